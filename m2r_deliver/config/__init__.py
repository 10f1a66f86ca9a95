"""Config: the TOML file and the command-line flags become one frozen Settings.

Every mistake is reported with the file, the key and the reason, all of them at once,
because an operator fixing a config from a bounce-free log should need one round trip.
The file is read as TOML 1.0 (``tomllib``; ``tomli`` before Python 3.11). The keys,
their kinds and defaults are in :mod:`.schema`; each section is built by its own reader
in :mod:`.sections`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from .files import default_config_path, default_state_dir, no_config_file, read_toml
from .schema import (BODY_PARTS, GUARD_NAMES, ISSUE_FIELDS, REPLY_CLOSED_ACTIONS, REPLY_MISSING_ACTIONS,
                     REPLY_OUTSIDER_POLICIES, ROUTE, ROUTE_MATCHES, SCHEMA, SECTIONS, UNKNOWN_USER_ACTIONS, Section)
from .sections import (ALL_CUSTOM_FIELDS, CUSTOM_FIELD_PREFIX, FORM_TARGETS, OVERRIDABLE, OVERRIDE_ALIASES,
                       REQUESTER_HEADER, FormSettings, GuardSettings, IssueSettings, LogSettings, MailSettings,
                       RedmineSettings, ReplySettings, Route, SenderSettings, StateSettings, override_token,
                       read_form, read_guard, read_issue, read_log, read_mail, read_redmine, read_reply, read_sender,
                       read_state)
from .outgoing import AcknowledgeSettings, OutgoingSettings, RelaySettings, read_acknowledge, read_outgoing, read_relay
from .values import FLAGS, Mistakes, Values
from ..valueclass import field, valueclass

__all__ = [
    "ALL_CUSTOM_FIELDS", "BODY_PARTS", "CUSTOM_FIELD_PREFIX", "FORM_TARGETS", "GUARD_NAMES", "ISSUE_FIELDS",
    "OVERRIDABLE", "OVERRIDE_ALIASES", "REPLY_CLOSED_ACTIONS", "REPLY_MISSING_ACTIONS", "REPLY_OUTSIDER_POLICIES",
    "REQUESTER_HEADER",
    "ROUTE_MATCHES", "SCHEMA", "SECTIONS", "UNKNOWN_USER_ACTIONS", "GuardSettings", "Route", "Settings",
    "default_config_path", "default_state_dir", "load", "override_token",
]


@valueclass(frozen=True, kw_only=True, eq=False)
class Settings(LogSettings, StateSettings, ReplySettings, FormSettings, SenderSettings, MailSettings,
               IssueSettings, RedmineSettings):
    """Every section's values as one object (``settings.url``, ``settings.retry_for``);
    the guards' as ``settings.guard``. Nothing compares two (no __eq__ is built at start-up)."""

    guard: GuardSettings = field(default_factory=GuardSettings)
    #: The mail the program sends: [outgoing], [acknowledge], [relay].
    outgoing: OutgoingSettings = field(default_factory=OutgoingSettings)
    acknowledge: AcknowledgeSettings = field(default_factory=AcknowledgeSettings)
    relay: RelaySettings = field(default_factory=RelaySettings)
    #: The file read, or None when the flags alone configure.
    source: str | None = None


def load(path: str | None, overrides: dict[str, dict[str, Any]], env: dict[str, str]) -> Settings:
    """Read the file (an explicit *path* must exist; the default one may be absent when
    the flags say enough), lay the flags' *overrides* over it, check everything, and
    build Settings."""
    looked_at = Path(os.path.expanduser(path)) if path else default_config_path(env)
    source: Path | None = looked_at
    data: dict[str, Any] = {}
    if path or looked_at.exists():
        data = read_toml(looked_at)
    elif not (overrides.get("redmine") or {}).get("url"):
        raise no_config_file(looked_at)
    else:
        source = None
    try:
        return _settings(data, overrides, str(source) if source else FLAGS, env, source)
    except ConfigError as exc:
        exc.log_file = _log_file_of(data)
        raise


def _settings(data: dict[str, Any], overrides: dict[str, dict[str, Any]], where: str, env: dict[str, str],
              source: Path | None) -> Settings:
    mistakes = Mistakes()
    for name, body in data.items():
        if name not in SCHEMA:
            mistakes.append(f"{where}: [{name}]: unknown section (known: {', '.join(SCHEMA)})")
        elif name == ROUTE.name and not isinstance(body, list):
            mistakes.append(f"{where}: {name}: must be an array of tables, written [[{name}]]")
        elif name != ROUTE.name and not isinstance(body, dict):
            mistakes.append(f"{where}: {name}: must be a table")
    tables = {section.name: _values(section, data, overrides.get(section.name) or {}, where, mistakes)
              for section in SECTIONS if not section.array}
    state = read_state(tables["state"], env)
    mail = read_mail(tables["mail"])
    outgoing = read_outgoing(tables["outgoing"])
    settings = Settings(
        **read_redmine(tables["redmine"]),
        **read_issue(tables["issue"], _routes(data.get(ROUTE.name), where, mistakes)),
        **mail,
        **read_sender(tables["sender"]),
        **read_form(tables["form"]),
        **read_reply(tables["reply"], mail["body_delimiters_regex"]),
        **state,
        **read_log(tables["log"]),
        guard=read_guard(tables["guard"], state["state_dir"]),
        outgoing=outgoing,
        acknowledge=read_acknowledge(tables["acknowledge"], outgoing, source.parent if source else None),
        relay=read_relay(tables["relay"], outgoing, source.parent if source else None),
        source=str(source) if source else None,
    )
    if mistakes:
        raise ConfigError("\n".join(mistakes))
    return settings


def _values(section: Section, data: dict[str, Any], flags: dict[str, Any], where: str, mistakes: Mistakes) -> Values:
    """The file's table for *section* with the flags that were given laid over it."""
    body = data.get(section.name)
    flagged = {key: value for key, value in flags.items() if value is not None}
    table = {**(body if isinstance(body, dict) else {}), **flagged}
    return Values(section, table, where, mistakes, frozenset(flagged))


def _routes(bodies: Any, where: str, mistakes: Mistakes) -> list[Values]:
    values = ", ".join(k for k in ROUTE.names if k not in ROUTE_MATCHES)
    unknown = f"unknown route field (matches: {', '.join(ROUTE_MATCHES)}; values: {values})"
    routes = []
    for number, body in enumerate(bodies if isinstance(bodies, list) else [], 1):
        if not isinstance(body, dict):
            mistakes.append(f"{where}: route #{number}: must be a table")
            body = {}
        routes.append(Values(ROUTE, body, where, mistakes, label=f"route #{number}: ", unknown=unknown))
    return routes


def _log_file_of(data: dict[str, Any]) -> Path | None:
    """Where to report a config mistake: the [log] file, if the file says one clearly."""
    log = data.get("log")
    path = log.get("file") if isinstance(log, dict) else None
    return Path(os.path.expanduser(path)) if isinstance(path, str) and path.strip() else None
