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
from .errors import ConfigError, OutcomeUnknown, RedmineRefused, RedmineUnavailable
from .mail import Attachment
from .plan import Keyword, PlannedAttachment, size_text
from .identity import Account, NewAccount, random_login


class _TimeoutEngine(SyncEngine):
    """python-redmine 2.5.0 drops ``requests={'timeout': …}``; this engine applies it."""

    def request(self, method, url, headers=None, params=None, data=None):
        kwargs = self.construct_request_kwargs(method, headers, params, data)
        kwargs["timeout"] = self.requests["timeout"]
        return self.process_response(self.session.request(method, url, **kwargs))


@contextmanager
def translated_errors(doing: str, *, acting: bool = False) -> Iterator[None]:
    """Turn whatever python-redmine or requests raise into one of our classes.

    *acting*: the request acts as a mail's sender (X-Redmine-Switch-User), so a 403
    means "this user may not", a refusal of the mail, not a broken setup.
    """
    try:
        yield
    except rx.ForbiddenError:
        if acting:
            raise RedmineRefused(f"{doing}: 403 Forbidden for the user acted as", status=403) from None
        raise RedmineUnavailable(f"{doing}: 403 Forbidden: REST API disabled, or the key's user may not do this") from None
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

    def get(self, kind: str) -> dict[str, Any] | None:
        entry = self.data.get("kinds", {}).get(kind)
        if entry and self._fresh(entry):
            return entry["ids"]
        return None

    def _fresh(self, entry: dict[str, Any]) -> bool:
        return time.time() - entry.get("at", 0) < self.ttl

    def put(self, kind: str, ids: dict[str, Any]) -> None:
        """Store *ids* under *kind*, forgetting whatever has expired."""
        kinds = {k: v for k, v in self.data.get("kinds", {}).items() if self._fresh(v)}
        self._write({**kinds, kind: {"at": time.time(), "ids": ids}})

    def drop(self, kind: str) -> None:
        self._write({k: v for k, v in self.data.get("kinds", {}).items() if k != kind})

    def _write(self, kinds: dict[str, Any]) -> None:
        self.data = {"url": self.url, "kinds": kinds}
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

    def group(self, name: str) -> int | None:
        def groups():
            try:
                return [(g.name, g.id) for g in self.redmine.group.all()]
            except rx.ForbiddenError:
                return []  # listing groups needs an admin key

        return self._lookup("groups", name, groups)

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
    return any(_comparable(j.get("notes")) == _comparable(notes) and j.get("created_on", "") >= after
               for j in journals)


def add_watcher(redmine: Redmine, issue_id: int, user_id: int) -> bool:
    """Make *user_id* watch the issue; False when the user acted as may not add watchers."""
    with translated_errors(f"adding watcher {user_id} to issue #{issue_id}"):
        try:
            redmine.engine.request("post", f"{redmine.url}/issues/{issue_id}/watchers.json", data={"user_id": user_id})
        except rx.ForbiddenError:
            return False
    return True


@dataclass(frozen=True)
class IssueState:
    """What a reply needs to know about the issue it answers."""

    id: int
    project_id: int
    closed: bool
    journal_ids: frozenset[int]
    private_journal_ids: frozenset[int]
    watcher_ids: frozenset[int]


def issue_state(redmine: Redmine, issue_id: int) -> IssueState | None:
    """The issue with its notes and watchers; None when it does not exist or cannot be seen."""
    with translated_errors(f"reading issue #{issue_id}"):
        try:
            raw = redmine.issue.get(issue_id, include=["journals", "watchers"]).raw()
        except (rx.ResourceNotFoundError, rx.ForbiddenError):
            return None
    journals = raw.get("journals", [])
    return IssueState(
        id=int(raw["id"]),
        project_id=int(raw["project"]["id"]),
        closed=bool(raw.get("status", {}).get("is_closed")),
        journal_ids=frozenset(int(j["id"]) for j in journals),
        private_journal_ids=frozenset(int(j["id"]) for j in journals if j.get("private_notes")),
        watcher_ids=frozenset(int(w["id"]) for w in raw.get("watchers", [])),
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


class Directory:
    """Redmine's users for identity.py: accounts by address or login, what they may do,
    new accounts. Cached in the name cache; all but ``me`` need an admin key."""

    def __init__(self, redmine: Redmine, resolver: Resolver):
        self.redmine, self.resolver, self.cache = redmine, resolver, resolver.cache
        #: Names without a user, remembered for this delivery only (an account may be made any time).
        self.absent: set[str] = set()

    def me(self) -> Account:
        entry = self.cache.get("me")
        if entry is None:
            with translated_errors("asking who the key belongs to"):
                entry = _account_entry(self.redmine.user.get("current").raw())
            self.cache.put("me", entry)
        return Account(**entry)

    def account_by_mail(self, addr: str) -> Account | None:
        return self._find(f"account:{addr.lower()}", addr, lambda u: (u.get("mail") or "").lower() == addr.lower())

    def account_by_login(self, login: str) -> Account | None:
        return self._find(f"login:{login.lower()}", login, lambda u: u.get("login", "").lower() == login.lower())

    def forget(self, account: Account) -> None:
        """Drop what is cached about *account* (Redmine said it changed)."""
        for kind in (f"account:{account.mail.lower()}", f"login:{account.login.lower()}", f"memberships:{account.id}"):
            self.cache.drop(kind)

    def _find(self, kind: str, name: str, matches) -> Account | None:
        """Search users of any status by *name*, keep the exact match, and read it whole
        (the list does not say whether a user is locked or an administrator)."""
        entry = self.cache.get(kind)
        if entry:
            return Account(**entry)
        if kind in self.absent:
            return None
        with translated_errors(f"looking up the Redmine user {name}"):
            found = [u.raw() for u in self.redmine.user.filter(name=name, status="")]
        exact = [u for u in found if matches(u)]
        if not exact:
            self.absent.add(kind)
            return None
        return self._read(int(exact[0]["id"]))

    def _read(self, user_id: int) -> Account:
        with translated_errors(f"reading Redmine user {user_id}"):
            raw = self.redmine.user.get(user_id, include=["memberships"]).raw()
        entry = _account_entry(raw)
        self.cache.put(f"account:{entry['mail'].lower()}", entry)
        self.cache.put(f"login:{entry['login'].lower()}", entry)
        self.cache.put(f"memberships:{entry['id']}", {
            str(m["project"]["id"]): [r["id"] for r in m.get("roles", [])] for m in raw.get("memberships", [])
        })
        return Account(**entry)

    def may(self, account: Account, project_id: int, permissions: tuple[str, ...]) -> bool | None:
        """Whether one of *permissions* is granted by the account's roles in the project;
        None for a non-member of a public project (Redmine's non-member role decides)."""
        if account.admin:
            return True
        memberships = self.cache.get(f"memberships:{account.id}")
        if memberships is None:
            self._read(account.id)
            memberships = self.cache.get(f"memberships:{account.id}") or {}
        roles = memberships.get(str(project_id))
        if roles is None:
            return None if self.project(project_id).get("is_public") else False
        granted = {p for role in roles for p in self._role_permissions(role)}
        return any(p in granted for p in permissions)

    def _role_permissions(self, role_id: int) -> list[str]:
        entry = self.cache.get(f"role:{role_id}")
        if entry is None:
            with translated_errors(f"reading role {role_id}"):
                entry = {"permissions": list(self.redmine.role.get(role_id).raw().get("permissions", []))}
            self.cache.put(f"role:{role_id}", entry)
        return entry["permissions"]

    def project(self, project_id: int) -> dict[str, Any]:
        """``is_public`` and ``status`` (1 active, 5 closed, 9 archived) of a project."""
        entry = self.cache.get(f"project:{project_id}")
        if entry is None:
            with translated_errors(f"reading project {project_id}"):
                raw = self.redmine.project.get(project_id).raw()
            entry = {"is_public": bool(raw.get("is_public")), "status": int(raw.get("status", 1))}
            self.cache.put(f"project:{project_id}", entry)
        return entry

    def create_account(self, new: NewAccount) -> Account:
        """Create the account (its groups must exist first), the way Redmine's mail
        handler does: generated password, account mail unless told not to."""
        group_ids = [self.resolver.group(name) for name in new.groups]
        unknown = [name for name, gid in zip(new.groups, group_ids) if gid is None]
        if unknown:
            raise ConfigError(f"unknown group(s) {', '.join(unknown)}", key="sender.default_group")
        user_id = self._post_user(new, new.login)
        for group_id in group_ids:
            with translated_errors(f"adding user {user_id} to group {group_id}"):
                self.redmine.engine.request("post", f"{self.redmine.url}/groups/{group_id}/users.json",
                                            data={"user_id": user_id})
        return self._read(user_id)

    def _post_user(self, new: NewAccount, login: str) -> int:
        body = {
            "user": {"login": login, "firstname": new.firstname, "lastname": new.lastname, "mail": new.mail,
                     "generate_password": True, "mail_notification": new.mail_notification},
            "send_information": new.send_information,
        }
        try:
            with translated_errors(f"creating the Redmine account {login}"):
                return int(self.redmine.engine.request("post", f"{self.redmine.url}/users.json", data=body)
                           ["user"]["id"])
        except RedmineRefused as exc:
            self.absent.discard(f"account:{new.mail.lower()}")
            existing = self.account_by_mail(new.mail)  # made meanwhile by another delivery
            if existing:
                return existing.id
            if exc.status == 422 and "login" in exc.reason.lower() and login == new.login:
                return self._post_user(new, random_login())
            raise


def _account_entry(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": int(raw["id"]),
        "login": raw.get("login", ""),
        "mail": (raw.get("mail") or "").lower(),
        "active": int(raw.get("status", 1)) == 1,
        "admin": bool(raw.get("admin")),
    }


def custom_values(issue: dict[str, Any]) -> dict[int, Any]:
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
    wanted = _comparable(description)
    params = [("project_id", project_id), ("status_id", "*"), ("subject", f"~{subject}"), ("sort", "id"),
              ("created_on", ">=" + time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(since))), ("limit", 100)]
    offset, total = 0, 1
    while offset < total:
        issues, total = _issues(redmine, [*params, ("offset", offset)], "looking for an issue already filed "
                                "from this mail (by subject and text)")
        for issue in issues:
            if (issue["id"] not in not_these and issue["subject"] == subject
                    and _comparable(issue.get("description")).startswith(wanted)):
                return int(issue["id"])
        if not issues:
            break
        offset += len(issues)
    return None


def _comparable(text: str | None) -> str:
    """Redmine stores line ends as CRLF; compare text as we sent it."""
    return (text or "").replace("\r\n", "\n").rstrip()


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
