"""Config: the TOML file and the command-line flags become one frozen Settings.

Every mistake is reported with the file, the key and the reason, all of them at once,
because an operator fixing a config from a bounce-free log should need one round trip.
The file is read with the standard library's ``tomllib`` (TOML 1.0).
"""

from __future__ import annotations

import os
import re
import stat
import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigError

ISSUE_FIELDS = ("project", "tracker", "status", "priority", "category", "assigned_to", "fixed_version")
OVERRIDABLE = (*ISSUE_FIELDS, "start_date", "due_date", "estimated_hours", "done_ratio", "private", "parent_issue")
#: Redmine's spellings of attributes in --allow-override.
OVERRIDE_ALIASES = {"is_private": "private", "target_version": "fixed_version", "parent": "parent_issue"}
#: In allow_override: every custom field, or one by name (``custom_field:Target host``).
ALL_CUSTOM_FIELDS = "custom_fields"
CUSTOM_FIELD_PREFIX = "custom_field:"
BODY_PARTS = ("plain", "html")
ROUTE_MATCHES = ("from", "to", "list_id", "subject")
UNKNOWN_USER_ACTIONS = ("accept", "ignore", "create")
#: The guards' names, each also a [guard] on/off key; guards.CHAIN runs them in this order.
GUARD_NAMES = ("redmine_own", "loop_marker", "auto_submitted", "bounce", "not_addressed", "auto_reply", "bulk",
               "mailing_list", "daemon_sender")
REPLY_MISSING_ACTIONS = ("new", "drop")
REPLY_CLOSED_ACTIONS = ("note", "missing")
#: Where a [form] field may go besides "cf:<custom field name>".
FORM_TARGETS = (*ISSUE_FIELDS, "start_date", "due_date", "estimated_hours", "done_ratio")
REQUESTER_HEADER = "Requester: {requester}"

_STR, _BOOL, _NUM, _INT = str, bool, (int, float), int
_LIST = list
_TABLE = dict

# section → key → accepted type(s); the single description of the file format.
SCHEMA: dict[str, dict[str, Any]] = {
    "redmine": {
        "url": _STR, "key": _STR, "key_file": _STR, "timeout": _NUM, "verify": _BOOL, "ca_bundle": _STR,
        "marker_field": (str, int),
    },
    "issue": {
        **{name: _STR for name in ISSUE_FIELDS},
        "private": _BOOL,
        "custom_fields": _TABLE,
        "allow_override": _LIST,
        "project_from_subaddress": _STR,
    },
    "mail": {
        "body_delimiters": _LIST,
        "body_delimiters_regex": _BOOL,
        "empty_subject": _STR,
        "preferred_body_part": _STR,
        "excluded_filenames": _LIST,
        "excluded_filenames_regex": _BOOL,
    },
    "sender": {
        "unknown_user": _STR,
        "default_group": _STR,
        "permission_check": _BOOL,
        "account_notice": _BOOL,
        "notification": _BOOL,
        "fallback_user": _STR,
        "own_addresses": _LIST,
        "authserv_id": _STR,
        "requester_labels": _LIST,
        "requester_field": _STR,
        "requester_header": _STR,
    },
    "form": {"senders": _LIST, "fields": _TABLE, "subject": _STR},
    "reply": {"missing": _STR, "closed": _STR, "delimiters": _LIST},
    "state": {"dir": _STR, "cache_ttl": _NUM, "retry_for": (str, int, float), "max_attempts": _INT,
              "keep_for": (str, int, float)},
    "log": {"syslog": _BOOL, "file": _STR, "verbose": _BOOL},
    "guard": {
        **{name: _BOOL for name in GUARD_NAMES},
        "trusted_senders": _LIST,
        "catch_addresses": _LIST,
        "redmine_from": _LIST,
        "loop_markers": _LIST,
        "rate_limit": _INT,
        "rate_window": _NUM,
        "hold": _STR,
        "keep_dropped": _STR,
    },
}
# Per-route values are the issue's attributes; what the mail may override and where the
# project comes from stay site-wide.
ROUTE_KEYS = {**{m: (str, list) for m in ROUTE_MATCHES},
              **{k: v for k, v in SCHEMA["issue"].items() if k not in ("project_from_subaddress", "allow_override")}}


@dataclass(frozen=True)
class Route:
    """Mail matching every given pattern gets these [issue] values. First match wins."""

    match: dict[str, tuple[str, ...]]
    values: dict[str, Any]
    index: int


@dataclass(frozen=True)
class GuardSettings:
    """The [guard] section: which guards run and what they compare against."""

    off: frozenset[str] = frozenset()
    #: From addresses or glob patterns whose automatic or list mail is a request.
    trusted_senders: tuple[str, ...] = ()
    #: When set, mail naming none of these among its recipients is left alone.
    catch_addresses: tuple[str, ...] = ()
    #: Redmine's emission address(es): mail from them is Redmine's own.
    redmine_from: tuple[str, ...] = ()
    #: X-Loop values that mark mail as already handled upstream.
    loop_markers: tuple[str, ...] = ()
    #: At most this many mails per sender per window are filed; 0 switches the breaker off.
    rate_limit: int = 20
    rate_window: float = 3600.0
    hold: Path = Path("hold")
    keep_dropped: Path | None = None

    def enabled(self, name: str) -> bool:
        return name not in self.off


@dataclass(frozen=True)
class Settings:
    url: str
    key: str = field(repr=False)
    timeout: float = 30.0
    verify: bool | str = True
    issue: dict[str, Any] = field(default_factory=dict)
    allow_override: frozenset[str] = frozenset()
    project_from_subaddress: str | None = None
    routes: tuple[Route, ...] = ()
    body_delimiters: tuple[str, ...] = ()
    #: Delimiters are regular expressions a whole line must match (else literal lines).
    body_delimiters_regex: bool = False
    empty_subject: str = "(no subject)"
    prefer_html: bool = False
    #: Attachment names never filed: (the pattern as written, a regex the whole name must match).
    excluded_filenames: tuple[tuple[str, re.Pattern], ...] = ()
    unknown_user: str = "accept"
    default_group: str | None = None
    permission_check: bool = True
    account_notice: bool = True
    notification: bool = True
    #: Login to file as when the sender cannot be acted as; None: the key's own user.
    fallback_user: str | None = None
    #: The gateway's own addresses (globs): never watchers.
    own_addresses: tuple[str, ...] = ()
    #: Trust a From address only with a passing Authentication-Results of this host.
    authserv_id: str | None = None
    requester_labels: tuple[str, ...] = ()
    requester_field: str | None = None
    requester_header: str = REQUESTER_HEADER
    #: Senders (globs) whose mail is a web form: its requester may file as themself.
    form_senders: tuple[str, ...] = ()
    #: Form label → issue attribute or "cf:<custom field>".
    form_fields: dict[str, str] = field(default_factory=dict)
    form_subject: str | None = None
    reply_missing: str = "new"
    reply_closed: str = "note"
    reply_delimiters: tuple[str, ...] = ()
    #: The issue custom field (name or id) that holds each mail's delivery key.
    marker_field: str | None = None
    state_dir: Path = Path()
    cache_ttl: float = 300.0
    #: Seconds a temporary failure is retried, counted from the first attempt.
    retry_for: float = 5 * 86400.0
    #: Refusals by Redmine (the mail's fault) before the mail is quarantined.
    max_attempts: int = 3
    #: Seconds the ledger remembers a mail after its last attempt.
    keep_for: float = 30 * 86400.0
    syslog: bool = True
    log_file: Path | None = None
    verbose: bool = False
    guard: GuardSettings = GuardSettings()
    source: str | None = None


def default_config_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "m2r-deliver" / "config.toml"


def default_state_dir(env: dict[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(base) / "m2r-deliver"


def load(path: str | None, overrides: dict[str, dict[str, Any]], env: dict[str, str]) -> Settings:
    """Read the file (an explicit *path* must exist; the default one may be absent),
    lay the flags' *overrides* over it, validate everything, and build Settings."""
    source = Path(os.path.expanduser(path)) if path else default_config_path(env)
    data: dict[str, Any] = {}
    if path or source.exists():
        data = _read_toml(source)
    else:
        source = None
    errors = _validate(data, str(source) if source else "(flags)")
    for section, values in overrides.items():
        data.setdefault(section, {}).update({k: v for k, v in values.items() if v is not None})
    try:
        if errors:
            raise ConfigError("\n".join(errors))
        return _build(data, source, env)
    except ConfigError as exc:
        exc.log_file = _log_file_of(data)
        raise


def _log_file_of(data: dict[str, Any]) -> Path | None:
    """Where to report a config mistake: the [log] file, if the file says one clearly."""
    log = data.get("log")
    path = log.get("file") if isinstance(log, dict) else None
    return Path(os.path.expanduser(path)) if isinstance(path, str) else None


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    if "key" in data.get("redmine", {}):
        _refuse_if_readable_by_others(path, "it holds [redmine] key")
    return data


def _refuse_if_readable_by_others(path: Path, why: str) -> None:
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{why} but group or others may read it (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}",
            file=str(path),
        )


def _type_ok(value: Any, expected: Any) -> bool:
    if expected is _NUM or expected == (int, float):
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if expected is _INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if isinstance(expected, tuple):
        return isinstance(value, expected)
    return isinstance(value, expected)


def _type_name(expected: Any) -> str:
    names = {str: "a string", bool: "true or false", list: "a list", dict: "a table", int: "an integer"}
    if isinstance(expected, tuple):
        return " or ".join(names.get(t, "a number") for t in expected) if expected != (int, float) else "a number"
    return names.get(expected, "a number")


def _validate(data: dict[str, Any], where: str) -> list[str]:
    errors: list[str] = []
    for section, body in data.items():
        if section == "route":
            errors += _validate_routes(body, where)
            continue
        keys = SCHEMA.get(section)
        if keys is None:
            errors.append(f"{where}: [{section}]: unknown section (known: {', '.join([*SCHEMA, 'route'])})")
            continue
        if not isinstance(body, dict):
            errors.append(f"{where}: {section}: must be a table")
            continue
        errors += _validate_table(body, keys, f"{where}: {section}.")
    return errors


def _validate_table(body: dict[str, Any], keys: dict[str, Any], prefix: str) -> list[str]:
    errors = []
    for key, value in body.items():
        if key not in keys:
            errors.append(f"{prefix}{key}: unknown key (known: {', '.join(keys)})")
        elif not _type_ok(value, keys[key]):
            errors.append(f"{prefix}{key}: must be {_type_name(keys[key])}, not {type(value).__name__}")
    return errors


def _validate_routes(routes: Any, where: str) -> list[str]:
    if not isinstance(routes, list):
        return [f"{where}: route: must be an array of tables, written [[route]]"]
    errors = []
    for number, route in enumerate(routes, 1):
        prefix = f"{where}: route #{number}: "
        if not isinstance(route, dict):
            errors.append(f"{prefix}must be a table")
            continue
        for key, value in route.items():
            if key not in ROUTE_KEYS:
                errors.append(f"{prefix}{key}: unknown route field (matches: {', '.join(ROUTE_MATCHES)}; "
                              f"values: {', '.join(k for k in ROUTE_KEYS if k not in ROUTE_MATCHES)})")
            elif not _type_ok(value, ROUTE_KEYS[key]):
                errors.append(f"{prefix}{key}: must be {_type_name(ROUTE_KEYS[key])}")
        if not any(m in route for m in ROUTE_MATCHES):
            errors.append(f"{prefix}has nothing to match on (give one of: {', '.join(ROUTE_MATCHES)})")
        if isinstance(route.get("subject"), (str, list)):
            for pattern in _as_tuple(route["subject"]):
                try:
                    re.compile(pattern)
                except re.error as exc:
                    errors.append(f"{prefix}subject: bad regular expression {pattern!r}: {exc}")
    return errors


def _as_tuple(value: Any) -> tuple[str, ...]:
    return tuple(value) if isinstance(value, list) else (value,)


def _build(data: dict[str, Any], source: Path | None, env: dict[str, str]) -> Settings:
    where = str(source) if source else "(flags)"
    redmine = data.get("redmine", {})
    issue = data.get("issue", {})
    mail = data.get("mail", {})
    sender = data.get("sender", {})
    state = data.get("state", {})
    log = data.get("log", {})

    url = redmine.get("url")
    if not url:
        raise ConfigError("no Redmine URL: set [redmine] url or pass --url", file=where, key="redmine.url")
    if not re.match(r"https?://[^/\s]+", url):
        raise ConfigError(f"not an http(s) URL: {url!r}", file=where, key="redmine.url")
    timeout = redmine.get("timeout", 30)
    if not 0 < timeout <= 600:
        raise ConfigError(f"must be between 0 and 600 seconds, not {timeout}", file=where, key="redmine.timeout")

    allow = _allow_override(issue.get("allow_override", []), where)
    action = sender.get("unknown_user", "accept")
    if action not in UNKNOWN_USER_ACTIONS:
        raise ConfigError(f"must be one of {', '.join(UNKNOWN_USER_ACTIONS)}, not {action!r}",
                          file=where, key="sender.unknown_user")
    delimiters = _strings(mail, "body_delimiters", where, "mail")
    if mail.get("body_delimiters_regex"):
        _compiled(delimiters, where, "mail.body_delimiters")
    body_part = mail.get("preferred_body_part", "plain")
    if body_part not in BODY_PARTS:
        raise ConfigError(f"must be one of {', '.join(BODY_PARTS)}, not {body_part!r}",
                          file=where, key="mail.preferred_body_part")
    excluded = [pattern.strip() for pattern in _strings(mail, "excluded_filenames", where, "mail")]
    if mail.get("excluded_filenames_regex"):
        excluded_res = _compiled(excluded, where, "mail.excluded_filenames")
    else:
        excluded_res = [re.compile(re.escape(p).replace(r"\*", ".*"), re.IGNORECASE) for p in excluded]
    reply = data.get("reply", {})
    reply_delimiters = _strings(reply, "delimiters", where, "reply")
    if mail.get("body_delimiters_regex"):
        _compiled(reply_delimiters, where, "reply.delimiters")
    form = data.get("form", {})

    retry_for = _duration(state, "retry_for", 5 * 86400, where)
    keep_for = _duration(state, "keep_for", 30 * 86400, where)
    if keep_for < retry_for:
        raise ConfigError(f"must be at least [state] retry_for ({state.get('retry_for', '5d')}): the ledger must "
                          "remember a mail for as long as it may be retried", file=where, key="state.keep_for")
    max_attempts = state.get("max_attempts", 3)
    if isinstance(max_attempts, bool) or not 1 <= max_attempts <= 100:
        raise ConfigError(f"must be a whole number from 1 to 100, not {max_attempts!r}", file=where,
                          key="state.max_attempts")
    marker_field = redmine.get("marker_field")
    if isinstance(marker_field, bool) or (marker_field is not None and not str(marker_field).strip()):
        raise ConfigError("must name an issue custom field (its name or id)", file=where, key="redmine.marker_field")

    verify: bool | str = redmine.get("verify", True)
    if verify and redmine.get("ca_bundle"):
        verify = os.path.expanduser(redmine["ca_bundle"])
    state_dir = Path(os.path.expanduser(state["dir"])) if "dir" in state else default_state_dir(env)

    return Settings(
        url=url.rstrip("/"),
        key=_api_key(redmine, where),
        timeout=float(timeout),
        verify=verify,
        issue={k: v for k, v in issue.items() if k in (*ISSUE_FIELDS, "private", "custom_fields")},
        allow_override=allow,
        project_from_subaddress=issue.get("project_from_subaddress"),
        routes=tuple(
            Route(
                match={m: _as_tuple(r[m]) for m in ROUTE_MATCHES if m in r},
                values={k: v for k, v in r.items() if k not in ROUTE_MATCHES},
                index=n,
            )
            for n, r in enumerate(data.get("route", []), 1)
        ),
        body_delimiters=tuple(delimiters),
        body_delimiters_regex=mail.get("body_delimiters_regex", False),
        empty_subject=mail.get("empty_subject", "(no subject)"),
        prefer_html=body_part == "html",
        excluded_filenames=tuple(zip(excluded, excluded_res)),
        unknown_user=action,
        default_group=sender.get("default_group"),
        permission_check=sender.get("permission_check", True),
        account_notice=sender.get("account_notice", True),
        notification=sender.get("notification", True),
        fallback_user=sender.get("fallback_user") or None,
        own_addresses=tuple(a.lower() for a in _strings(sender, "own_addresses", where, "sender")),
        authserv_id=(sender.get("authserv_id") or "").strip().lower() or None,
        requester_labels=_strings(sender, "requester_labels", where, "sender"),
        requester_field=sender.get("requester_field") or None,
        requester_header=_template(sender, "requester_header", REQUESTER_HEADER, {"requester", "name", "addr"},
                                   where, "sender"),
        form_senders=tuple(a.lower() for a in _strings(form, "senders", where, "form")),
        form_fields=_form_fields(form.get("fields", {}), where),
        form_subject=_template(form, "subject", None, None, where, "form"),
        reply_missing=_choice(reply, "missing", REPLY_MISSING_ACTIONS, where, "reply"),
        reply_closed=_choice(reply, "closed", REPLY_CLOSED_ACTIONS, where, "reply"),
        reply_delimiters=reply_delimiters,
        marker_field=str(marker_field).strip() if marker_field is not None else None,
        state_dir=state_dir,
        cache_ttl=float(state.get("cache_ttl", 300)),
        retry_for=retry_for,
        max_attempts=max_attempts,
        keep_for=keep_for,
        syslog=log.get("syslog", True),
        log_file=Path(os.path.expanduser(log["file"])) if "file" in log else None,
        verbose=log.get("verbose", False),
        guard=_guard_settings(data.get("guard", {}), state_dir, where),
        source=str(source) if source else None,
    )


def _guard_settings(guard: dict[str, Any], state_dir: Path, where: str) -> GuardSettings:
    def strings(key: str) -> tuple[str, ...]:
        values = guard.get(key, [])
        if not all(isinstance(v, str) and v.strip() for v in values):
            raise ConfigError("must be a list of non-empty strings", file=where, key=f"guard.{key}")
        return tuple(v.strip().lower() for v in values)

    def folder(key: str) -> Path | None:
        value = guard.get(key)
        if value is None:
            return None
        path = Path(os.path.expanduser(value))
        return path if path.is_absolute() else state_dir / path

    rate_limit = guard.get("rate_limit", 20)
    if rate_limit < 0:
        raise ConfigError(f"must be 0 (off) or more, not {rate_limit}", file=where, key="guard.rate_limit")
    rate_window = guard.get("rate_window", 3600)
    if rate_window <= 0:
        raise ConfigError(f"must be a number of seconds above 0, not {rate_window}", file=where,
                          key="guard.rate_window")
    return GuardSettings(
        off=frozenset(name for name in GUARD_NAMES if guard.get(name) is False),
        trusted_senders=strings("trusted_senders"),
        catch_addresses=strings("catch_addresses"),
        redmine_from=strings("redmine_from"),
        loop_markers=strings("loop_markers"),
        rate_limit=rate_limit,
        rate_window=float(rate_window),
        hold=folder("hold") or state_dir / "hold",
        keep_dropped=folder("keep_dropped"),
    )


def _allow_override(items: list[Any], where: str) -> frozenset[str]:
    """Attribute names (Redmine's spellings accepted), "all", "custom_fields", or
    ``custom_field:NAME``, comma-separated or listed; a name that is none of these is
    a mistake, not silently a custom field."""
    allowed: set[str] = set()
    unknown = []
    for token in (t.strip() for item in items for t in str(item).split(",")):
        if not token:
            continue
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
        raise ConfigError(f"unknown attribute(s) {', '.join(unknown)} (known: all, {', '.join(OVERRIDABLE)}, "
                          f"{ALL_CUSTOM_FIELDS}, or one custom field as {CUSTOM_FIELD_PREFIX}NAME)",
                          file=where, key="issue.allow_override")
    return frozenset(allowed)


def override_token(name: str) -> str:
    """How Redmine compares names in allow_override: lower case, spaces as underscores."""
    return re.sub(r"\s+", "_", name.strip().lower())


def _strings(table: dict[str, Any], key: str, where: str, section: str) -> tuple[str, ...]:
    """A list of strings, blank ones left out."""
    values = table.get(key, [])
    if not all(isinstance(v, str) for v in values):
        raise ConfigError("must be a list of strings", file=where, key=f"{section}.{key}")
    return tuple(v for v in values if v.strip())


def _compiled(patterns: list[str], where: str, key: str) -> list[re.Pattern]:
    compiled = []
    for pattern in patterns:
        try:
            compiled.append(re.compile(pattern, re.IGNORECASE))
        except re.error as exc:
            raise ConfigError(f"bad regular expression {pattern!r}: {exc}", file=where, key=key) from None
    return compiled


def _choice(table: dict[str, Any], key: str, choices: tuple[str, ...], where: str, section: str) -> str:
    value = table.get(key, choices[0])
    if value not in choices:
        raise ConfigError(f"must be one of {', '.join(choices)}, not {value!r}", file=where, key=f"{section}.{key}")
    return value


def _template(table: dict[str, Any], key: str, default: str | None, names: set[str] | None, where: str,
              section: str) -> str | None:
    """A ``{name}`` template; *names* limits the fields it may use (None: any)."""
    text = table.get(key, default)
    if text is None:
        return None
    try:
        used = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
    except ValueError as exc:
        raise ConfigError(f"bad template {text!r}: {exc}", file=where, key=f"{section}.{key}") from None
    unknown = used - names if names is not None else {n for n in used if not n}
    if unknown:
        known = ", ".join("{%s}" % n for n in sorted(names or ()))
        raise ConfigError(f"unknown field(s) in {text!r}" + (f" (known: {known})" if known else ""),
                          file=where, key=f"{section}.{key}")
    return text


def _form_fields(fields: dict[str, Any], where: str) -> dict[str, str]:
    """``{"申請種別" = "category", "対象" = "cf:Target host"}``: labels → attributes."""
    mapping = {}
    for label, target in fields.items():
        if not isinstance(target, str):
            raise ConfigError(f"{label!r}: must be a string", file=where, key="form.fields")
        target = target.strip()
        if target.startswith("cf:") and target[3:].strip():
            mapping[label] = "cf:" + target[3:].strip()
        elif target in FORM_TARGETS:
            mapping[label] = target
        else:
            raise ConfigError(f"{label!r}: unknown target {target!r} (known: cf:<custom field name>, "
                              f"{', '.join(FORM_TARGETS)})", file=where, key="form.fields")
    return mapping


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def _duration(table: dict[str, Any], key: str, default: float, where: str) -> float:
    """Seconds from a number of seconds or Postfix-style text: "90s", "30m", "12h", "5d", "1w"."""
    value = table.get(key, default)
    if isinstance(value, str):
        match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", value.lower())
        if not match:
            raise ConfigError(f"not a duration: {value!r} (write e.g. 5d, 12h, 30m, 90s, or a number of seconds)",
                              file=where, key=f"state.{key}")
        value = float(match.group(1)) * _UNITS[match.group(2)]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigError(f"must be a duration of zero or more, not {value!r}", file=where, key=f"state.{key}")
    return float(value)


def _api_key(redmine: dict[str, Any], where: str) -> str:
    if redmine.get("key"):
        return redmine["key"].strip()
    key_file = redmine.get("key_file")
    if not key_file:
        raise ConfigError("no API key: set [redmine] key_file (or key), or pass --key-file", file=where,
                          key="redmine.key_file")
    path = Path(os.path.expanduser(key_file))
    _refuse_if_readable_by_others(path, "it is an API key file")
    try:
        key = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read API key file {path}: {exc}", file=where, key="redmine.key_file") from None
    if not key:
        raise ConfigError(f"API key file {path} is empty", file=where, key="redmine.key_file")
    return key
