"""Issues and notes: create an issue, add a note, add a watcher, read the state of the
issue a reply answers."""

from __future__ import annotations

import time
from typing import Any

from redminelib import Redmine, exceptions as rx

from ..errors import OutcomeUnknown, RedmineUnavailable
from ..outsiders import Records, first_line
from .client import translated_errors
from ..valueclass import valueclass


def create_issue(redmine: Redmine, api_fields: dict[str, Any], uploads: list[dict[str, Any]], *,
                 acting: bool = False) -> tuple[int, dict[str, Any]]:
    """File the issue; its id, and the issue as Redmine answered (what it stored).

    A temporary failure here may come after Redmine saved the issue (the answer was lost),
    so it is OutcomeUnknown: the next attempt looks before filing again."""
    try:
        with translated_errors("creating the issue", acting=acting):
            issue = redmine.issue.create(**api_fields, **({"uploads": uploads} if uploads else {})).raw()
    except RedmineUnavailable as exc:
        raise OutcomeUnknown(exc.reason) from None
    return int(issue["id"]), issue


#: Attributes sent as ``x_id`` and answered as ``{"x": {"id": …}}``.
_ANSWERED_AS = {
    "tracker_id": "tracker", "status_id": "status", "priority_id": "priority", "category_id": "category",
    "fixed_version_id": "fixed_version", "assigned_to_id": "assigned_to", "parent_issue_id": "parent",
}


def not_taken(requested: dict[str, Any], issue: dict[str, Any]) -> list[str]:
    """What Redmine left out without an error: a status its workflow does not allow for a
    new issue, a field the key's user may not set."""
    missing = []
    for key, value in requested.items():
        if key in _ANSWERED_AS:
            got = (issue.get(_ANSWERED_AS[key]) or {}).get("id")
        elif key in ("is_private", "start_date", "due_date", "done_ratio", "estimated_hours"):
            got = issue.get(key)
        else:
            continue
        if got != value:
            missing.append(f"{key} {value!r} not taken by Redmine (workflow or permissions), it set {got!r}")
    return missing


def add_note(redmine: Redmine, issue_id: int, api_fields: dict[str, Any], uploads: list[dict[str, Any]], *,
             acting: bool = False) -> None:
    """PUT the note (and any attribute changes) with the attachments in one request. As
    with a new issue, a lost answer leaves the outcome unknown."""
    if uploads:
        api_fields = {**api_fields, "uploads": uploads}
    try:
        with translated_errors(f"adding a note to issue #{issue_id}", acting=acting):
            redmine.issue.update(issue_id, **api_fields)
    except RedmineUnavailable as exc:
        raise OutcomeUnknown(exc.reason) from None


def find_note(redmine: Redmine, issue_id: int, notes: str, since: float) -> bool:
    """Whether the issue has a note with exactly this text written since *since*: how a
    reply whose answer was lost is known to be in Redmine already."""
    with translated_errors(f"looking for the note already added to issue #{issue_id}"):
        try:
            journals = redmine.issue.get(issue_id, include=["journals"]).raw().get("journals", [])
        except rx.ResourceNotFoundError:
            return False
    after = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))
    return any(comparable(j.get("notes")) == comparable(notes) and j.get("created_on", "") >= after
               for j in journals)


def add_watcher(redmine: Redmine, issue_id: int, user_id: int) -> bool:
    """Make *user_id* watch the issue; False when the user acted as may not add watchers
    or Redmine refuses this one watcher (which is left out, never the mail)."""
    with translated_errors(f"adding watcher {user_id} to issue #{issue_id}"):
        try:
            redmine.engine.request("post", f"{redmine.url}/issues/{issue_id}/watchers.json", data={"user_id": user_id})
        except (rx.ForbiddenError, rx.ResourceNotFoundError, rx.ValidationError):
            return False
    return True


def status_of(redmine: Redmine, issue_id: int) -> int | None:
    """The issue's status id now (how a status change Redmine left out is noticed)."""
    with translated_errors(f"reading the status of issue #{issue_id}"):
        try:
            return (redmine.issue.get(issue_id).raw().get("status") or {}).get("id")
        except (rx.ResourceNotFoundError, rx.ForbiddenError):
            return None


def add_relation(redmine: Redmine, issue_id: int, other_id: int) -> bool:
    """Relate *issue_id* to *other_id* ("relates"). True when the relation is there now:
    added, or there already (Redmine answers 422 then, which is how a retry finds it);
    False when Redmine will not relate them (no permission, the other issue unseen)."""
    body = {"relation": {"issue_to_id": other_id, "relation_type": "relates"}}
    with translated_errors(f"relating issue #{issue_id} to #{other_id}"):
        try:
            redmine.engine.request("post", f"{redmine.url}/issues/{issue_id}/relations.json", data=body)
        except rx.ValidationError:
            answer = redmine.engine.request("get", f"{redmine.url}/issues/{issue_id}/relations.json")
            return any({r.get("issue_id"), r.get("issue_to_id")} == {issue_id, other_id}
                       for r in answer.get("relations", ()))
        except (rx.ForbiddenError, rx.ResourceNotFoundError):
            return False
    return True


@valueclass(frozen=True)
class IssueState:
    """What a reply needs to know about the issue it answers."""

    id: int
    project_id: int
    closed: bool
    journal_ids: frozenset[int]
    private_journal_ids: frozenset[int]
    watcher_ids: frozenset[int]
    #: Who the issue records: author, watchers, note authors, opening lines, custom fields.
    records: Records = Records()
    custom_values: dict[int, Any] | None = None
    #: The status's id and name.
    status_id: int | None = None
    status: str = ""
    #: When it was closed (else last changed): ISO 8601, UTC, as Redmine answers.
    closed_on: str | None = None


def issue_state(redmine: Redmine, issue_id: int) -> IssueState | None:
    """The issue with its notes and watchers; None when it does not exist or cannot be seen."""
    with translated_errors(f"reading issue #{issue_id}"):
        try:
            raw = redmine.issue.get(issue_id, include=["journals", "watchers"]).raw()
        except (rx.ResourceNotFoundError, rx.ForbiddenError):
            return None
    journals = raw.get("journals", [])
    watcher_ids = frozenset(int(w["id"]) for w in raw.get("watchers", []))
    records = Records(
        author_id=(raw.get("author") or {}).get("id"),
        watcher_ids=watcher_ids,
        journal_user_ids=frozenset(int(j["user"]["id"]) for j in journals if (j.get("user") or {}).get("id")),
        opening=first_line(raw.get("description")),
        note_openings=tuple(first_line(j.get("notes")) for j in journals if j.get("notes")),
    )
    return IssueState(
        id=int(raw["id"]),
        project_id=int(raw["project"]["id"]),
        closed=bool(raw.get("status", {}).get("is_closed")),
        journal_ids=frozenset(int(j["id"]) for j in journals),
        private_journal_ids=frozenset(int(j["id"]) for j in journals if j.get("private_notes")),
        watcher_ids=watcher_ids,
        records=records,
        custom_values=custom_values(raw),
        status_id=(raw.get("status") or {}).get("id"),
        status=str((raw.get("status") or {}).get("name") or ""),
        closed_on=raw.get("closed_on") or raw.get("updated_on"),
    )


#: At most this many issues are read to find the issue of a journal Message-ID.
JOURNAL_SEARCH_LIMIT = 25


def issue_of_journal(redmine: Redmine, journal_id: int, since: str | None) -> IssueState | None:
    """The issue a note belongs to. Redmine's REST API cannot look a journal up by id, so
    this reads the issues changed since the note's Message-ID time, oldest change
    first, each with its journals: one list request plus one per issue, at most
    JOURNAL_SEARCH_LIMIT. The issue is found unless that many other issues changed
    after the note was written and before the issue's own last change."""
    if not since:
        return None
    with translated_errors(f"looking for the issue of note {journal_id}"):
        candidates = [int(i.id) for i in redmine.issue.filter(
            status_id="*", updated_on=f">={since}", sort="updated_on:asc", limit=JOURNAL_SEARCH_LIMIT,
        )[:JOURNAL_SEARCH_LIMIT]]
    for issue_id in candidates:
        state = issue_state(redmine, issue_id)
        if state and journal_id in state.journal_ids:
            return state
    return None


def custom_values(issue: dict[str, Any]) -> dict[int, Any]:
    return {int(cf["id"]): cf.get("value") for cf in issue.get("custom_fields") or () if "id" in cf}


def comparable(text: str | None) -> str:
    """Redmine stores line ends as CRLF; compare text as we sent it."""
    return (text or "").replace("\r\n", "\n").rstrip()


def issue_with_journals(redmine: Redmine, issue_id: int) -> dict[str, Any] | None:
    """The issue as Redmine's REST API shows it, with its journals and attachments; None
    when it does not exist or cannot be seen."""
    with translated_errors(f"reading issue #{issue_id}"):
        try:
            return redmine.issue.get(issue_id, include=["journals", "attachments"]).raw()
        except (rx.ResourceNotFoundError, rx.ForbiddenError):
            return None


def download_attachment(redmine: Redmine, attachment_id: int, limit: int) -> bytes:
    """The content of attachment *attachment_id*; RedmineUnavailable when it is longer
    than *limit* bytes (its size changed since it was listed) or cannot be read."""
    url = f"{redmine.url}/attachments/download/{attachment_id}"
    with translated_errors(f"downloading attachment {attachment_id}"):
        response = redmine.download(url)
        data = bytearray()
        for chunk in response.iter_content(64 * 1024):
            data += chunk
            if len(data) > limit:
                response.close()
                raise RedmineUnavailable(f"attachment {attachment_id} is larger than listed")
    return bytes(data)
