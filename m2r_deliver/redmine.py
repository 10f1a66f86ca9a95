"""The only module that talks HTTP: python-redmine behind an enforced timeout, every
network or HTTP failure mapped onto our exception classes, and names resolved to ids
through a short-lived cache in the state directory.

Imported only when a mail is about to be filed, so the drop path never pays for
``requests``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import time
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

import requests
from redminelib import Redmine, exceptions as rx
from redminelib.engines.sync import SyncEngine

from .config import Settings
from .errors import ConfigError, RedmineRefused, RedmineUnavailable
from .mail import Attachment
from .plan import Keyword, PlannedAttachment, size_text


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

    def custom_field(self, name: str) -> dict[str, Any] | None:
        """An issue custom field: its id, whether it takes several values, and for a list
        field the values it allows. A number is taken as the id."""
        if str(name).isdigit():
            return {"id": int(name), "multiple": False, "values": []}

        def fields():
            try:
                return [(f.name, _definition(f)) for f in self.redmine.custom_field.all() if f.customized_type == "issue"]
            except rx.ForbiddenError:
                return []  # listing custom fields needs an admin key

        return self._lookup("custom_field_definitions", name, fields)

    def find_project(self, identifier: str) -> int | None:
        return self._lookup(
            "projects", identifier,
            lambda: ((key, p.id) for p in self.redmine.project.all() for key in (p.identifier, p.name)),
        )

    def project(self, identifier: str) -> int:
        found = self.find_project(identifier)
        if found is None:
            raise RedmineRefused(f"project {identifier!r} does not exist or the key's user cannot see it", status=404)
        return found


def _definition(field) -> dict[str, Any]:
    values = [v.get("value") for v in getattr(field, "possible_values", None) or [] if isinstance(v, dict)]
    return {"id": field.id, "multiple": bool(getattr(field, "multiple", False)), "values": values}


def custom_field_value(definition: dict[str, Any], text: str) -> Any:
    """A keyword's text as the value of a custom field, read the way Redmine reads it: a
    list field's values matched without regard to case, several of them comma-separated
    when the field takes several; any other field takes the text. None: not a value."""
    choices = definition.get("values") or []
    if not choices:
        return text
    wanted = [w.strip() for w in text.split(",")] if definition.get("multiple") else [text.strip()]
    values = [next((c for c in choices if c.casefold() == w.casefold()), None) for w in wanted if w]
    if not values or None in values:
        return None
    return values if definition.get("multiple") else values[0]


def resolve_attribute(resolver: Resolver, project: str, name: str, value: Any) -> dict[str, Any] | None:
    """The API's attributes for one named attribute; None when Redmine has no such name."""
    lookups = {
        "tracker": ("tracker_id", resolver.tracker),
        "status": ("status_id", resolver.status),
        "priority": ("priority_id", resolver.priority),
        "category": ("category_id", lambda n: resolver.category(project, n)),
        "fixed_version": ("fixed_version_id", lambda n: resolver.version(project, n)),
        "assigned_to": ("assigned_to_id", lambda n: resolver.member(project, n)),
    }
    if name in lookups:
        key, lookup = lookups[name]
        found = lookup(value)
        return None if found is None else {key: found}
    if name == "private":
        return {"is_private": bool(value)}
    if name == "parent_issue":
        return {"parent_issue_id": value}
    return {name: value}


def resolve_fields(resolver: Resolver, project: str, fields: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """The API's issue attributes for *fields*, and the names that did not resolve."""
    api: dict[str, Any] = {"project_id": resolver.project(project)}
    unknown: list[str] = []
    for name, value in fields.items():
        if name == "custom_fields":
            entries = []
            for cf_name, cf_value in value.items():
                definition = resolver.custom_field(cf_name)
                if definition is None:
                    unknown.append(f"custom field {cf_name!r}")
                else:
                    entries.append({"id": definition["id"], "value": cf_value})
            if entries:
                api["custom_fields"] = entries
            continue
        resolved = resolve_attribute(resolver, project, name, value)
        if resolved is None:
            unknown.append(f"{name} {value!r}")
        else:
            api.update(resolved)
    return api, unknown


@dataclass(frozen=True)
class Keyed:
    """What a mail's keywords change: the project, each keyword Redmine knows with the
    API attributes it sets, and why the others change nothing."""

    project: str | None
    applied: tuple[tuple[Keyword, dict[str, Any]], ...]
    warnings: tuple[str, ...]

    def over(self, defaults: dict[str, Any]) -> dict[str, Any]:
        """The API attributes: the applied keywords' over *defaults*."""
        result = defaults
        for _, fields in self.applied:
            result = merged(result, fields)
        return result

    @property
    def lines(self) -> set[int]:
        """The description lines of the applied keywords."""
        return {keyword.line for keyword, _ in self.applied}

    def without(self, keywords: list[Keyword], reason: str) -> Keyed:
        return replace(self, applied=tuple(a for a in self.applied if a[0] not in keywords),
                       warnings=(*self.warnings, *(f"{k.name or k.attribute} {k.value!r} {reason}" for k in keywords)))


def resolve_keywords(resolver: Resolver, project: str | None, keywords: tuple[Keyword, ...]) -> Keyed:
    """Each keyword Redmine knows the value of; an unknown value leaves the default in
    place and says so. Never raises for a value the mail got wrong."""
    warnings: list[str] = []
    applied: list[tuple[Keyword, dict[str, Any]]] = []
    for keyword in keywords:
        if keyword.attribute == "project":
            if resolver.find_project(keyword.value) is not None:
                project = keyword.value
                applied.append((keyword, {}))
            else:
                warnings.append(f"project {keyword.value!r} unknown: filed in {project or 'no project'}")
    for keyword in keywords:
        if keyword.attribute == "project" or project is None:
            continue
        fields, problem = _keyword_fields(resolver, project, keyword)
        if fields is not None:
            applied.append((keyword, fields))
        elif problem:
            warnings.append(problem)
    return Keyed(project, tuple(applied), tuple(warnings))


def _keyword_fields(resolver: Resolver, project: str, keyword: Keyword) -> tuple[dict[str, Any] | None, str | None]:
    """The API attributes one keyword sets; or None, and why (None when a line that only
    looked like a custom field turns out to be ordinary text)."""
    if keyword.attribute != "custom_field":
        resolved = resolve_attribute(resolver, project, keyword.attribute, keyword.value)
        return resolved, None if resolved else f"{keyword.attribute} {keyword.value!r} unknown: ignored"
    definition = resolver.custom_field(keyword.name)
    if definition is None:
        return None, None if keyword.speculative else f"custom field {keyword.name!r} unknown: ignored"
    value = custom_field_value(definition, keyword.value)
    if value is None:
        return None, f"custom field {keyword.name!r}: {keyword.value!r} is not one of its values: ignored"
    return {"custom_fields": [{"id": definition["id"], "value": value}]}, None


def merged(defaults: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """*defaults* with *overrides* laid over them, custom fields merged by id."""
    result = {**defaults, **overrides}
    if "custom_fields" in defaults and "custom_fields" in overrides:
        by_id = {entry["id"]: entry for entry in (*defaults["custom_fields"], *overrides["custom_fields"])}
        result["custom_fields"] = list(by_id.values())
    return result


def create_issue(redmine: Redmine, api_fields: dict[str, Any], uploads: list[dict[str, Any]]) -> tuple[int, list[str]]:
    """File the issue; its id, and the attributes Redmine silently did not set."""
    with translated_errors("creating the issue"):
        issue = redmine.issue.create(**api_fields, **({"uploads": uploads} if uploads else {})).raw()
        return int(issue["id"]), not_taken(api_fields, issue)


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


def upload_attachments(redmine: Redmine, cache: NameCache, files: list[tuple[PlannedAttachment, Attachment]],
                       ) -> tuple[list[dict[str, Any]], list[PlannedAttachment]]:
    """Upload each file not already left out; returns the upload tokens, and the files
    Redmine would not take (too large, an extension it denies), each with the reason.

    Redmine's size limit is not in its API: it is read from the first refusal and kept
    in the cache, so later files over it are left out without being sent.
    """
    limits = cache.get("limits") or {}
    uploads, refused = [], []
    for planned, attachment in files:
        if planned.left_out:
            continue
        limit = limits.get("attachment_max_size")
        if limit and planned.size > limit:
            refused.append(replace(planned, left_out=f"larger than Redmine accepts ({size_text(limit)})"))
            continue
        try:
            uploads.append(upload(redmine, attachment))
        except RedmineRefused as exc:
            refused.append(replace(planned, left_out=f"Redmine refused it: {exc.reason}"))
            limit = _size_limit(exc.reason, planned.size)
            if limit:
                limits = {**limits, "attachment_max_size": limit}
                cache.put("limits", limits)
    return uploads, refused


def upload(redmine: Redmine, attachment: Attachment) -> dict[str, Any]:
    """Decode the file into a temporary file and stream that to ``/uploads.json``: the
    decoded bytes are never all in memory."""
    with tempfile.TemporaryFile(prefix="m2r-upload.") as spool:
        attachment.write_to(spool)
        spool.seek(0)
        with translated_errors(f"uploading {attachment.filename!r}"):
            try:
                answer = redmine.upload(spool, filename=attachment.filename)
            except rx.ValidationError as exc:
                raise RedmineRefused(str(exc), status=422) from None
            except rx.RequestEntityTooLargeError:
                raise RedmineRefused("413 Request Entity Too Large", status=413) from None
    return {"token": answer["token"], "filename": attachment.filename, "content_type": attachment.content_type}


def _size_limit(reason: str, size: int) -> int | None:
    """Redmine's "exceeds the maximum allowed file size (5242880)", in any language."""
    numbers = [int(n) for n in re.findall(r"\((\d+)\)", reason)]
    return numbers[-1] if numbers and 0 < numbers[-1] < size else None
