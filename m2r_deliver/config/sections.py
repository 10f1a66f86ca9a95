"""Each section of the config as the fields it gives Settings, with its own reader
``read_<section>`` ([guard] and each [[route]] as a frozen dataclass of its own).

A reader takes the section's checked :class:`Values` and returns the section's values,
noting what only the section as a whole can tell (a regular expression that does not
compile, ``keep_for`` shorter than ``retry_for``). Attribute defaults are read from the
schema.
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Any

from . import files
from .schema import (FORM, GUARD, GUARD_NAMES, ISSUE, ISSUE_FIELDS, LOG, MAIL, REDMINE, REPLY, ROUTE,
                     ROUTE_MATCHES, SENDER, STATE)
from .values import Values
from ..valueclass import field, valueclass

OVERRIDABLE = (*ISSUE_FIELDS, "start_date", "due_date", "estimated_hours", "done_ratio", "private", "parent_issue")
#: Redmine's spellings of attributes in --allow-override.
OVERRIDE_ALIASES = {"is_private": "private", "target_version": "fixed_version", "parent": "parent_issue"}
#: In allow_override: every custom field, or one by name (``custom_field:Target host``).
ALL_CUSTOM_FIELDS = "custom_fields"
CUSTOM_FIELD_PREFIX = "custom_field:"
#: Where a [form] field may go besides "cf:<custom field name>".
FORM_TARGETS = (*ISSUE_FIELDS, "start_date", "due_date", "estimated_hours", "done_ratio")
REQUESTER_HEADER = SENDER["requester_header"].value

#: The sections that make up Settings declare its fields and their defaults (each reader
#: returns its section's values as Settings' keyword arguments); Settings is what is built.
_fields_of_settings = valueclass(frozen=True, kw_only=True, eq=False)


@_fields_of_settings
class RedmineSettings:
    """[redmine]: where Redmine is and how to talk to it."""

    url: str
    key: str = field(repr=False)
    timeout: float = REDMINE["timeout"].value
    #: False, True, or the CA bundle to verify with.
    verify: bool | str = REDMINE["verify"].value
    #: The issue custom field (name or id) that holds each mail's delivery key.
    marker_field: str | None = REDMINE["marker_field"].value


def read_redmine(v: Values) -> dict[str, Any]:
    if not v.given("url") and "url" not in v.table:
        v.fail("url", "no Redmine URL: set [redmine] url or pass --url")
    verify = v["verify"]
    if verify and v.given("ca_bundle"):
        verify = str(v["ca_bundle"])
    return dict(url=v["url"] or "", key=_api_key(v), timeout=v["timeout"], verify=verify,
                           marker_field=v["marker_field"])


def _api_key(v: Values) -> str:
    if v.given("key"):
        try:
            return files.checked_key(v["key"])
        except ValueError as exc:
            v.fail("key", str(exc))
            return ""
    if "key" in v.table:
        return ""
    if not v.given("key_file"):
        if "key_file" not in v.table:
            v.fail("key_file", "no API key: set [redmine] key_file (or key), or pass --key-file")
        return ""
    try:
        return files.read_key_file(v["key_file"])
    except ValueError as exc:
        v.fail("key_file", str(exc))
        return ""


@valueclass(frozen=True)
class Route:
    """Mail matching every given pattern gets these [issue] values. First match wins."""

    match: dict[str, tuple[str, ...]]
    values: dict[str, Any]
    index: int


@_fields_of_settings
class IssueSettings:
    """[issue] and the [[route]] tables: the attributes of new issues."""

    #: The [issue] attributes given (a name, ``private``, ``custom_fields``).
    issue: dict[str, Any] = field(default_factory=dict)
    allow_override: frozenset[str] = frozenset()
    project_from_subaddress: str | None = ISSUE["project_from_subaddress"].value
    #: Per-route values are the issue's attributes; what the mail may override and where
    #: the project comes from stay site-wide.
    routes: tuple[Route, ...] = ()


def read_issue(v: Values, routes: list[Values]) -> dict[str, Any]:
    return dict(
        issue={name: v.table[name] for name in (*ISSUE_FIELDS, "private", "custom_fields") if v.given(name)},
        allow_override=_allow_override(v),
        project_from_subaddress=v["project_from_subaddress"],
        routes=tuple(_route(r, n) for n, r in enumerate(routes, 1)),
    )


def _route(v: Values, index: int) -> Route:
    if not any(m in v.table for m in ROUTE_MATCHES):
        v.mistakes.append(f"{v.where('')}: route #{index}: has nothing to match on "
                          f"(give one of: {', '.join(ROUTE_MATCHES)})")
    if v.given("subject"):
        _compiled(v, "subject", v["subject"], flags=0)
    return Route(match={m: v[m] for m in ROUTE_MATCHES if v.given(m)},
                 values={k: v.table[k] for k in ROUTE.names if k not in ROUTE_MATCHES and v.given(k)},
                 index=index)


def _allow_override(v: Values) -> frozenset[str]:
    """Attribute names (Redmine's spellings accepted), "all", "custom_fields", or
    ``custom_field:NAME``, comma-separated or listed; a name that is none of these is
    a mistake, not silently a custom field."""
    allowed: set[str] = set()
    unknown = []
    for token in (t.strip() for item in v["allow_override"] for t in item.split(",")):
        if token.lower().startswith(CUSTOM_FIELD_PREFIX):
            allowed.add(CUSTOM_FIELD_PREFIX + override_token(token[len(CUSTOM_FIELD_PREFIX):]))
            continue
        name = override_token(token)
        name = OVERRIDE_ALIASES.get(name, name)
        if name == "all":
            allowed.update((*OVERRIDABLE, ALL_CUSTOM_FIELDS))
        elif name in OVERRIDABLE or name == ALL_CUSTOM_FIELDS:
            allowed.add(name)
        else:
            unknown.append(token)
    if unknown:
        v.fail("allow_override", f"unknown attribute(s) {', '.join(unknown)} (known: all, {', '.join(OVERRIDABLE)}, "
                                 f"{ALL_CUSTOM_FIELDS}, or one custom field as {CUSTOM_FIELD_PREFIX}NAME)")
    return frozenset(allowed)


def override_token(name: str) -> str:
    """How Redmine compares names in allow_override: lower case, spaces as underscores."""
    return re.sub(r"\s+", "_", name.strip().lower())


@_fields_of_settings
class MailSettings:
    """[mail]: how a mail's text and attachments become the issue."""

    body_delimiters: tuple[str, ...] = MAIL["body_delimiters"].value
    #: Delimiters are regular expressions a whole line must match (else literal lines).
    body_delimiters_regex: bool = MAIL["body_delimiters_regex"].value
    empty_subject: str = MAIL["empty_subject"].value
    prefer_html: bool = MAIL["preferred_body_part"].value == "html"
    #: Attachment names never filed: (the pattern as written, a regex the whole name must match).
    excluded_filenames: tuple[tuple[str, re.Pattern], ...] = ()


def read_mail(v: Values) -> dict[str, Any]:
    regex = v["body_delimiters_regex"]
    if regex:
        _compiled(v, "body_delimiters", v["body_delimiters"])
    excluded = [pattern.strip() for pattern in v["excluded_filenames"]]
    if v["excluded_filenames_regex"]:
        patterns = _compiled(v, "excluded_filenames", excluded)
    else:
        patterns = [re.compile(re.escape(p).replace(r"\*", ".*"), re.IGNORECASE) for p in excluded]
    return dict(body_delimiters=v["body_delimiters"], body_delimiters_regex=regex,
                        empty_subject=v["empty_subject"], prefer_html=v["preferred_body_part"] == "html",
                        excluded_filenames=tuple(zip(excluded, patterns, strict=True)))


def _compiled(v: Values, name: str, patterns: tuple[str, ...] | list[str], flags: int = re.IGNORECASE
              ) -> list[re.Pattern]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, flags))
        except re.error as exc:
            v.fail(name, f"bad regular expression {pattern!r}: {exc}")
    return compiled


@_fields_of_settings
class SenderSettings:
    """[sender]: who files the issue."""

    unknown_user: str = SENDER["unknown_user"].value
    default_group: str | None = SENDER["default_group"].value
    permission_check: bool = SENDER["permission_check"].value
    account_notice: bool = SENDER["account_notice"].value
    notification: bool = SENDER["notification"].value
    #: Login to file as when the sender cannot be acted as; None: the key's own user.
    fallback_user: str | None = SENDER["fallback_user"].value
    #: The gateway's own addresses (globs): never watchers.
    own_addresses: tuple[str, ...] = SENDER["own_addresses"].value
    #: Trust a From address only with a passing Authentication-Results of this host.
    authserv_id: str | None = SENDER["authserv_id"].value
    requester_labels: tuple[str, ...] = SENDER["requester_labels"].value
    requester_field: str | None = SENDER["requester_field"].value
    requester_header: str = REQUESTER_HEADER


def read_sender(v: Values) -> dict[str, Any]:
    return dict(
        unknown_user=v["unknown_user"], default_group=v["default_group"],
        permission_check=v["permission_check"], account_notice=v["account_notice"],
        notification=v["notification"], fallback_user=v["fallback_user"] or None,
        own_addresses=tuple(a.lower() for a in v["own_addresses"]),
        authserv_id=(v["authserv_id"] or "").strip().lower() or None,
        requester_labels=v["requester_labels"], requester_field=v["requester_field"] or None,
        requester_header=_template(v, "requester_header", {"requester", "name", "addr"}) or "",
    )


def _template(v: Values, name: str, fields: set[str] | None) -> str | None:
    """A ``{name}`` template; *fields* limits the fields it may use (None: any)."""
    text = v[name]
    if text is None:
        return None
    try:
        used = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        v.fail(name, f"bad template {text!r}: {exc}")
        return v.section[name].value
    unknown = used - fields if fields is not None else {f for f in used if not f}
    if unknown:
        known = ", ".join(f"{{{f}}}" for f in sorted(fields or ()))
        v.fail(name, f"unknown field(s) in {text!r}" + (f" (known: {known})" if known else ""))
        return v.section[name].value
    return text


@_fields_of_settings
class FormSettings:
    """[form]: mail a web form sends on behalf of a requester."""

    #: Senders (globs) whose mail is a web form: its requester may file as themself.
    form_senders: tuple[str, ...] = FORM["senders"].value
    #: Form label → issue attribute or "cf:<custom field>".
    form_fields: dict[str, str] = field(default_factory=dict)
    form_subject: str | None = FORM["subject"].value


def read_form(v: Values) -> dict[str, Any]:
    return dict(form_senders=tuple(a.lower() for a in v["senders"]), form_fields=_form_fields(v),
                        form_subject=_template(v, "subject", None))


def _form_fields(v: Values) -> dict[str, str]:
    """``{"申請種別" = "category", "対象" = "cf:Target host"}``: labels → attributes."""
    mapping = {}
    for label, target in v["fields"].items():
        if not isinstance(target, str):
            v.fail("fields", f"{label!r}: must be a string")
            continue
        target = target.strip()
        if target.startswith("cf:") and target[3:].strip():
            mapping[label] = "cf:" + target[3:].strip()
        elif target in FORM_TARGETS:
            mapping[label] = target
        else:
            v.fail("fields", f"{label!r}: unknown target {target!r} (known: cf:<custom field name>, "
                             f"{', '.join(FORM_TARGETS)})")
    return mapping


@_fields_of_settings
class ReplySettings:
    """[reply]: mail that answers an issue."""

    reply_missing: str = REPLY["missing"].value
    reply_closed: str = REPLY["closed"].value
    reply_delimiters: tuple[str, ...] = REPLY["delimiters"].value
    #: "requester": a sender not acted as adds notes only where the issue records them.
    reply_outsiders: str = REPLY["outsiders"].value
    #: A reply to a closed issue reopens it to this status (within reopen_within).
    reopen_status: str | None = REPLY["reopen_status"].value
    #: Seconds after a closed issue's last change that a reply still reopens it.
    reopen_within: float = REPLY["reopen_within"].value
    #: Statuses that wait for the requester; a reply moves such an issue to resume_status.
    waiting_statuses: tuple[str, ...] = REPLY["waiting_statuses"].value
    resume_status: str | None = REPLY["resume_status"].value


def read_reply(v: Values, regex: bool) -> dict[str, Any]:
    if regex:
        _compiled(v, "delimiters", v["delimiters"])
    if v["waiting_statuses"] and v["resume_status"] is None:
        v.fail("waiting_statuses", "is set but [reply] resume_status is not: name the status a reply moves a "
                                   "waiting issue to")
    return dict(reply_missing=v["missing"], reply_closed=v["closed"], reply_delimiters=v["delimiters"],
                reply_outsiders=v["outsiders"], reopen_status=v["reopen_status"], reopen_within=v["reopen_within"],
                waiting_statuses=tuple(v["waiting_statuses"]), resume_status=v["resume_status"])


@_fields_of_settings
class StateSettings:
    """[state]: the ledger, the caches and the retry policy."""

    state_dir: Path = Path()
    cache_ttl: float = STATE["cache_ttl"].value
    #: Seconds a temporary failure is retried, counted from the first attempt.
    retry_for: float = STATE["retry_for"].value
    #: Refusals by Redmine (the mail's fault) before the mail is quarantined.
    max_attempts: int = STATE["max_attempts"].value
    #: Seconds the ledger remembers a mail after its last attempt.
    keep_for: float = STATE["keep_for"].value


def read_state(v: Values, env: dict[str, str]) -> dict[str, Any]:
    if v["keep_for"] < v["retry_for"]:
        v.fail("keep_for", f"must be at least [state] retry_for ({v.raw('retry_for')}): the ledger must "
                           "remember a mail for as long as it may be retried")
    return dict(state_dir=v["dir"] or files.default_state_dir(env), cache_ttl=v["cache_ttl"],
                         retry_for=v["retry_for"], max_attempts=v["max_attempts"], keep_for=v["keep_for"])


@_fields_of_settings
class LogSettings:
    """[log]: where the one line per mail goes."""

    syslog: bool = LOG["syslog"].value
    log_file: Path | None = LOG["file"].value
    verbose: bool = LOG["verbose"].value


def read_log(v: Values) -> dict[str, Any]:
    return dict(syslog=v["syslog"], log_file=v["file"], verbose=v["verbose"])


@valueclass(frozen=True, kw_only=True)
class GuardSettings:
    """The [guard] section: which guards run and what they compare against."""

    off: frozenset[str] = frozenset(name for name in GUARD_NAMES if not GUARD[name].value)
    #: From addresses or glob patterns whose automatic or list mail is a request.
    trusted_senders: tuple[str, ...] = GUARD["trusted_senders"].value
    #: When set, mail naming none of these among its recipients is left alone.
    catch_addresses: tuple[str, ...] = GUARD["catch_addresses"].value
    #: Redmine's emission address(es): mail from them is Redmine's own.
    redmine_from: tuple[str, ...] = GUARD["redmine_from"].value
    #: X-Loop values that mark mail as already handled upstream.
    loop_markers: tuple[str, ...] = GUARD["loop_markers"].value
    #: At most this many mails per sender per window are filed; 0 switches the breaker off.
    rate_limit: int = GUARD["rate_limit"].value
    rate_window: float = GUARD["rate_window"].value
    hold: Path = GUARD["hold"].value
    keep_dropped: Path | None = GUARD["keep_dropped"].value

    def enabled(self, name: str) -> bool:
        return name not in self.off


def read_guard(v: Values, state_dir: Path) -> GuardSettings:
    def strings(name: str) -> tuple[str, ...]:
        return tuple(s.strip().lower() for s in v[name])

    def folder(name: str) -> Path | None:
        path = v[name]
        return None if path is None else state_dir / path  # an absolute path stays itself

    return GuardSettings(
        off=frozenset(name for name in GUARD_NAMES if not v[name]),
        trusted_senders=strings("trusted_senders"), catch_addresses=strings("catch_addresses"),
        redmine_from=strings("redmine_from"), loop_markers=strings("loop_markers"),
        rate_limit=v["rate_limit"], rate_window=v["rate_window"],
        hold=state_dir / v["hold"], keep_dropped=folder("keep_dropped"),
    )

