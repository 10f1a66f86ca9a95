"""Finding earlier filings: the issue a mail was already filed as (by the marker custom
field, or by subject and text), and what ``check`` needs to know the marker works."""

from __future__ import annotations

import time
from typing import Any

from redminelib import Redmine

from ..errors import ConfigError, RedmineUnavailable
from .client import translated_errors
from .issues import comparable, custom_values


def _issues(redmine: Redmine, params: list[tuple[str, Any]], doing: str) -> tuple[list[dict[str, Any]], int]:
    """One page of ``/issues.json``, asked with a list of query pairs (repeated names and
    brackets as Redmine's filter syntax needs, which python-redmine's filter cannot say)."""
    with translated_errors(doing):
        answer = redmine.engine.request("get", f"{redmine.url}/issues.json", params=params)
        return list(answer["issues"]), int(answer["total_count"])


def find_by_marker(redmine: Redmine, field_id: int, value: str, project_id: int | None = None) -> int | None:
    """The oldest issue, in any project (or in *project_id*) and status, whose custom field
    *field_id* holds exactly *value*. The long filter syntax keeps Redmine from reading
    ``|`` or a leading ``~`` in a Message-ID as operators."""
    cf = f"cf_{field_id}"
    scope = [("project_id", project_id)] if project_id is not None else []
    issues, _ = _issues(redmine, [*scope, ("f[]", "status_id"), ("op[status_id]", "*"), ("f[]", cf),
                                  (f"op[{cf}]", "="), (f"v[{cf}][]", value), ("sort", "id"), ("limit", "100")],
                        "looking for an issue already filed from this mail")
    stored = [(issue["id"], custom_values(issue).get(field_id)) for issue in issues]
    if any(not isinstance(found, str) or found.casefold() != value.casefold() for _, found in stored):
        # Redmine silently skips a filter the key's user cannot use, and answers with every issue.
        where = f" in project #{project_id}" if project_id is not None else ""
        raise ConfigError(f"Redmine ignored the filter on custom field #{field_id}{where}: it must be 'Used as a "
                          "filter', enabled there, and visible to the key's user (run: m2r-deliver check)",
                          key="redmine.marker_field")
    return min((issue for issue, found in stored if found == value), default=None)


def find_by_content(redmine: Redmine, project_id: int, since: float, subject: str, description: str,
                    not_these: frozenset[int]) -> int | None:
    """For a Redmine without the marker field: the oldest issue in the project created
    since *since* with exactly this subject and a description that begins with this one
    (a note on a file Redmine refused may follow it), other than *not_these*."""
    wanted = comparable(description)
    params = [("project_id", project_id), ("status_id", "*"), ("subject", f"~{subject}"), ("sort", "id"),
              ("created_on", ">=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))), ("limit", 100)]
    offset, total = 0, 1
    while offset < total:
        issues, total = _issues(redmine, [*params, ("offset", offset)], "looking for an issue already filed "
                                "from this mail (by subject and text)")
        for issue in issues:
            if (issue["id"] not in not_these and issue["subject"] == subject
                    and comparable(issue.get("description")).startswith(wanted)):
                return int(issue["id"])
        if not issues:
            break
        offset += len(issues)
    return None


def custom_field_definition(redmine: Redmine, field_id: int) -> dict[str, Any] | None:
    """The field's definition (format, filter, trackers), when the key may list custom
    fields (an administrator's); None otherwise."""
    try:
        with translated_errors("listing custom fields"):
            answer = redmine.engine.request("get", f"{redmine.url}/custom_fields.json")
    except RedmineUnavailable:
        return None
    return next((cf for cf in answer.get("custom_fields", ()) if cf.get("id") == field_id), None)


def visible_issue_count(redmine: Redmine, project_id: int | None = None) -> int:
    scope = [("project_id", project_id)] if project_id is not None else []
    return _issues(redmine, [*scope, ("status_id", "*"), ("limit", 1)], "counting issues")[1]
