"""The only module that talks HTTP: python-redmine behind an enforced timeout, every
network or HTTP failure mapped onto our exception classes, and names resolved to ids
through a short-lived cache in the state directory.

Imported only when a mail is about to be filed, so the drop path never pays for
``requests``.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import requests
from redminelib import Redmine, exceptions as rx
from redminelib.engines.sync import SyncEngine

from .config import Settings
from .errors import ConfigError, OutcomeUnknown, RedmineRefused, RedmineUnavailable


class _TimeoutEngine(SyncEngine):
    """python-redmine 2.5.0 drops ``requests={'timeout': …}``; this engine applies it."""

    def request(self, method, url, headers=None, params=None, data=None):
        kwargs = self.construct_request_kwargs(method, headers, params, data)
        kwargs["timeout"] = self.requests["timeout"]
        return self.process_response(self.session.request(method, url, **kwargs))


@contextmanager
def translated_errors(doing: str) -> Iterator[None]:
    """Turn whatever python-redmine or requests raise into one of our classes."""
    try:
        yield
    except requests.Timeout as exc:
        raise RedmineUnavailable(f"{doing}: no answer within the timeout ({type(exc).__name__})") from None
    except requests.exceptions.SSLError as exc:
        raise RedmineUnavailable(f"{doing}: TLS failure: {_short(exc)}") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise RedmineUnavailable(f"{doing}: connection failed: {_short(exc)}") from None
    except requests.RequestException as exc:
        raise RedmineUnavailable(f"{doing}: {type(exc).__name__}: {_short(exc)}") from None
    except rx.AuthError:
        raise RedmineUnavailable(f"{doing}: 401 Unauthorized: the API key was refused") from None
    except rx.ForbiddenError:
        raise RedmineUnavailable(f"{doing}: 403 Forbidden: REST API disabled, or the key's user may not do this") from None
    except rx.ConflictError:
        raise RedmineUnavailable(f"{doing}: 409 Conflict") from None
    except rx.ServerError:
        raise RedmineUnavailable(f"{doing}: 500 Internal Server Error") from None
    except rx.JSONDecodeError:
        raise RedmineUnavailable(f"{doing}: the answer was not Redmine's JSON (a proxy's error page?)") from None
    except rx.HTTPProtocolError:
        raise ConfigError(f"{doing}: Redmine redirects between http and https: fix [redmine] url") from None
    except rx.ResourceNotFoundError:
        raise RedmineRefused(f"{doing}: 404 Not Found", status=404) from None
    except rx.ImpersonateError:
        raise RedmineRefused(f"{doing}: 412: the user to act as is unknown or locked", status=412) from None
    except rx.RequestEntityTooLargeError:
        raise RedmineRefused(f"{doing}: 413 Request Entity Too Large", status=413) from None
    except rx.ValidationError as exc:
        raise RedmineRefused(f"{doing}: 422 {exc}", status=422) from None
    except rx.UnknownError as exc:
        status = getattr(exc, "status_code", None)
        raise RedmineUnavailable(f"{doing}: HTTP {status}") from None
    except (rx.BaseRedmineError, ValueError, KeyError) as exc:
        raise RedmineUnavailable(f"{doing}: unexpected answer: {type(exc).__name__}: {exc}") from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def connect(settings: Settings, impersonate: str | None = None) -> Redmine:
    return Redmine(
        settings.url,
        key=settings.key,
        impersonate=impersonate,
        engine=_TimeoutEngine,
        requests={"timeout": settings.timeout, "verify": settings.verify},
    )


class NameCache:
    """Names → ids per kind (trackers, statuses, …), kept ``ttl`` seconds in one JSON file.

    A name missing from a fresh-enough list is looked up again once before it counts as
    unknown, so a tracker added in Redmine a minute ago is found.
    """

    def __init__(self, path: Path, ttl: float, url: str):
        self.path, self.ttl, self.url = path, ttl, url
        self.data = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == self.url else {}

    def get(self, kind: str) -> dict[str, int] | None:
        entry = self.data.get("kinds", {}).get(kind)
        if entry and time.time() - entry.get("at", 0) < self.ttl:
            return entry["ids"]
        return None

    def put(self, kind: str, ids: dict[str, int]) -> None:
        self.data = {"url": self.url, "kinds": {**self.data.get("kinds", {}), kind: {"at": time.time(), "ids": ids}}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".names.")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.data, out, ensure_ascii=False)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs requests


def _fold(name: str) -> str:
    return " ".join(str(name).split()).casefold()


class Resolver:
    """Turns the names in a Plan into the ids Redmine's API wants."""

    def __init__(self, redmine: Redmine, cache: NameCache):
        self.redmine, self.cache = redmine, cache

    def _lookup(self, kind: str, name: str, fetch) -> int | None:
        if isinstance(name, int) or str(name).isdigit():
            return int(name)
        ids = self.cache.get(kind)
        if ids is None or _fold(name) not in ids:
            with translated_errors(f"looking up {kind.split(':')[0]} names"):
                ids = {_fold(k): v for k, v in fetch()}
            self.cache.put(kind, ids)
        return ids.get(_fold(name))

    def tracker(self, name: str) -> int | None:
        return self._lookup("trackers", name, lambda: ((t.name, t.id) for t in self.redmine.tracker.all()))

    def status(self, name: str) -> int | None:
        return self._lookup("statuses", name, lambda: ((s.name, s.id) for s in self.redmine.issue_status.all()))

    def priority(self, name: str) -> int | None:
        return self._lookup(
            "priorities", name,
            lambda: ((p.name, p.id) for p in self.redmine.enumeration.filter(resource="issue_priorities")),
        )

    def category(self, project: str, name: str) -> int | None:
        return self._lookup(
            f"categories:{project}", name,
            lambda: ((c.name, c.id) for c in self.redmine.issue_category.filter(project_id=project)),
        )

    def version(self, project: str, name: str) -> int | None:
        return self._lookup(
            f"versions:{project}", name,
            lambda: ((v.name, v.id) for v in self.redmine.version.filter(project_id=project)),
        )

    def member(self, project: str, name: str) -> int | None:
        """A project member (user or group) by login, e-mail, or full name."""

        def members():
            for m in self.redmine.project_membership.filter(project_id=project):
                who = getattr(m, "user", None) or getattr(m, "group", None)
                if who is not None:
                    yield who.name, who.id
            try:
                for u in self.redmine.user.all():
                    yield u.login, u.id
                    yield u.mail, u.id
            except rx.ForbiddenError:
                pass  # listing users needs an admin key; names of members still work

        return self._lookup(f"members:{project}", name, members)

    def custom_field(self, name: str) -> int | None:
        def fields():
            try:
                return [(f.name, f.id) for f in self.redmine.custom_field.all() if f.customized_type == "issue"]
            except rx.ForbiddenError:
                return []

        return self._lookup("custom_fields", name, fields)

    def project(self, identifier: str) -> int:
        found = self._lookup(
            "projects", identifier,
            lambda: ((key, p.id) for p in self.redmine.project.all() for key in (p.identifier, p.name)),
        )
        if found is None:
            raise RedmineRefused(f"project {identifier!r} does not exist or the key's user cannot see it", status=404)
        return found


def resolve_fields(resolver: Resolver, project: str, fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The API's issue attributes for *fields*, and the names that did not resolve."""
    api: dict[str, Any] = {"project_id": resolver.project(project)}
    unknown: list[str] = []
    lookups = {
        "tracker": ("tracker_id", resolver.tracker),
        "status": ("status_id", resolver.status),
        "priority": ("priority_id", resolver.priority),
        "category": ("category_id", lambda n: resolver.category(project, n)),
        "fixed_version": ("fixed_version_id", lambda n: resolver.version(project, n)),
        "assigned_to": ("assigned_to_id", lambda n: resolver.member(project, n)),
    }
    for name, value in fields.items():
        if name in lookups:
            key, lookup = lookups[name]
            found = lookup(value)
            if found is None:
                unknown.append(f"{name} {value!r}")
            else:
                api[key] = found
        elif name == "private":
            api["is_private"] = bool(value)
        elif name == "custom_fields":
            entries = []
            for cf_name, cf_value in value.items():
                cf_id = resolver.custom_field(cf_name)
                if cf_id is None:
                    unknown.append(f"custom field {cf_name!r}")
                else:
                    entries.append({"id": cf_id, "value": cf_value})
            if entries:
                api["custom_fields"] = entries
        else:
            api[name] = value
    return api, unknown


def create_issue(redmine: Redmine, api_fields: dict[str, Any], uploads: list[dict[str, Any]]) -> tuple[int, dict]:
    """File the issue; returns its id and the custom field values Redmine stored (id → value).

    A temporary failure here may come after Redmine saved the issue (the answer was lost),
    so it is OutcomeUnknown: the next attempt looks before filing again."""
    if uploads:
        api_fields = {**api_fields, "uploads": uploads}
    try:
        with translated_errors("creating the issue"):
            issue = redmine.issue.create(**api_fields)
    except RedmineUnavailable as exc:
        raise OutcomeUnknown(exc.reason) from None
    return int(issue.id), _custom_values(issue.raw())


def _custom_values(issue: dict[str, Any]) -> dict[int, Any]:
    return {int(cf["id"]): cf.get("value") for cf in issue.get("custom_fields") or () if "id" in cf}


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
    stored = [(issue["id"], _custom_values(issue).get(field_id)) for issue in issues]
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
    since *since* with exactly this subject and description, other than *not_these*."""
    wanted = (subject, _comparable(description))
    params = [("project_id", project_id), ("status_id", "*"), ("subject", f"~{subject}"), ("sort", "id"),
              ("created_on", ">=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))), ("limit", 100)]
    offset, total = 0, 1
    while offset < total:
        issues, total = _issues(redmine, [*params, ("offset", offset)], "looking for an issue already filed "
                                "from this mail (by subject and text)")
        for issue in issues:
            if issue["id"] not in not_these and (issue["subject"], _comparable(issue.get("description"))) == wanted:
                return int(issue["id"])
        if not issues:
            break
        offset += len(issues)
    return None


def _comparable(text: str | None) -> str:
    """Redmine stores line ends as CRLF; compare text as we sent it."""
    return (text or "").replace("\r\n", "\n").rstrip()


def upload_spec(filename: str, content_type: str, data: bytes) -> dict[str, Any]:
    return {"path": io.BytesIO(data), "filename": filename, "content_type": content_type}


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
