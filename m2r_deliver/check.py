"""``m2r-deliver check``: the config is valid; now ask Redmine whether it will work.

One line per finding (``ok``, ``warn``, ``FAIL``); exit 1 when anything failed. Meant for
a person at a terminal, so it prints freely.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, TextIO

from .config import CUSTOM_FIELD_PREFIX, Settings, override_token
from .errors import EX_CHECK_FAILED, EX_OK, DeliveryError
from .maildir import ensure_maildir


class _Report:
    def __init__(self, out: TextIO):
        self.out, self.failed = out, False

    def ok(self, text: str) -> None:
        print(f"ok   {text}", file=self.out)

    def warn(self, text: str) -> None:
        print(f"warn {text}", file=self.out)

    def fail(self, text: str) -> None:
        self.failed = True
        print(f"FAIL {text}", file=self.out)


def check(settings: Settings, out: TextIO) -> int:
    report = _Report(out)
    report.ok(f"config {settings.source or '(flags only)'}")
    _check_state_dir(settings, report)
    _check_guard(settings, report)
    from . import redmine as api

    connection = api.connect(settings)
    try:
        with api.translated_errors("asking who the key belongs to"):
            me = connection.user.get("current")
    except DeliveryError as exc:
        report.fail(f"Redmine {settings.url}: {exc.reason}")
        return EX_CHECK_FAILED
    admin = bool(getattr(me, "admin", False))
    report.ok(f"Redmine {settings.url} answers; the key is {me.login}'s")
    if admin:
        report.ok("the key's user is an administrator")
    else:
        report.warn(f"the key is not an administrator's: every issue is filed as {me.login}")
    resolver = api.Resolver(connection, api.NameCache(settings.state_dir / "names.json", 0, settings.url))
    for label, values in _value_sets(settings):
        _check_values(resolver, api, label, values, report)
    _check_custom_field_overrides(connection, api, settings, report)
    _check_identity(settings, me.login, admin, resolver, api, report)
    return EX_CHECK_FAILED if report.failed else EX_OK


def _check_identity(settings: Settings, login: str, admin: bool, resolver, api, report: _Report) -> None:
    """What [sender] and [form] need from Redmine, and the risks of the setup."""
    if not admin:
        unused = [f"unknown_user = {settings.unknown_user}"] if settings.unknown_user != "accept" else []
        unused += ["fallback_user"] if settings.fallback_user else []
        if unused:
            report.warn(f"[sender] {' and '.join(unused)}: no effect without an administrator's key, "
                        f"every mail is filed as {login}")
    else:
        if not settings.authserv_id:
            report.warn("no [sender] authserv_id: any sender can act as any Redmine user by forging From")
        else:
            report.ok(f"From addresses are trusted only with a pass from {settings.authserv_id}")
        directory = api.Directory(resolver.redmine, resolver)
        try:
            _check_accounts(settings, directory, resolver, report)
        except DeliveryError as exc:
            report.fail(f"[sender]: {exc.reason}")
    if settings.requester_labels and not settings.form_senders:
        report.warn("[sender] requester_labels without [form] senders: requesters are recorded, never filed as")
    for name in _custom_fields_named(settings):
        try:
            found = resolver.custom_field(name)
        except DeliveryError as exc:
            report.fail(f"custom field {name!r}: {exc.reason}")
            continue
        if found is None:
            report.fail(f"custom field {name!r} not found in Redmine (issue custom fields need an admin key to list)")


def _check_accounts(settings: Settings, directory, resolver, report: _Report) -> None:
    if settings.fallback_user:
        account = directory.account_by_login(settings.fallback_user)
        if account is None or not account.active:
            report.fail(f"[sender] fallback_user {settings.fallback_user!r} "
                        f"{'does not exist' if account is None else 'is locked'}")
        else:
            report.ok(f"[sender] fallback_user {account.login} is #{account.id}")
    for group in (g.strip() for g in (settings.default_group or "").split(",") if g.strip()):
        if resolver.group(group) is None:
            report.fail(f"[sender] default_group {group!r} not found in Redmine")


def _custom_fields_named(settings: Settings) -> list[str]:
    names = [settings.requester_field] if settings.requester_field else []
    return names + [t[3:] for t in settings.form_fields.values() if t.startswith("cf:")]


def _value_sets(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    sets = [("[issue]", dict(settings.issue))]
    for route in settings.routes:
        sets.append((f"route #{route.index}", {**settings.issue, **route.values}))
    return sets


def _check_values(resolver, api, label: str, values: dict[str, Any], report: _Report) -> None:
    project = values.pop("project", None)
    if not project:
        report.fail(f"{label}: no project: set [issue] project or pass --project")
        return
    try:
        fields, unknown = api.resolve_fields(resolver, project, {k: v for k, v in values.items() if v is not None})
    except DeliveryError as exc:
        report.fail(f"{label}: project {project!r}: {exc.reason}")
        return
    report.ok(f"{label}: project {project!r} is #{fields['project_id']}")
    for name in unknown:
        report.fail(f"{label}: {name} not found in Redmine")
    resolved = [k for k in fields if k not in ("project_id",)]
    if resolved:
        report.ok(f"{label}: resolved {', '.join(resolved)}")


def _check_state_dir(settings: Settings, report: _Report) -> None:
    try:
        settings.state_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.state_dir, prefix=".check."):
            pass
    except OSError as exc:
        report.fail(f"state dir {settings.state_dir}: not writable: {exc.strerror}")
        return
    report.ok(f"state dir {settings.state_dir} is writable")
    if os.stat(settings.state_dir).st_mode & 0o077:
        report.warn(f"state dir {settings.state_dir} is readable by others (it holds mail metadata)")


def _check_guard(settings: Settings, report: _Report) -> None:
    guard = settings.guard
    folders = [("hold", guard.hold)] + ([("keep_dropped", guard.keep_dropped)] if guard.keep_dropped else [])
    for key, folder in folders:
        try:
            ensure_maildir(folder)
        except DeliveryError as exc:
            report.fail(f"[guard] {key}: {exc.reason}")
            continue
        report.ok(f"[guard] {key}: Maildir {folder} is ready")
    if guard.redmine_from:
        report.ok(f"[guard] redmine_from: mail from {', '.join(guard.redmine_from)} is Redmine's own")
    else:
        # Redmine 5.0's REST API has no settings resource (GET /settings.json answers 403 even
        # to an administrator's key), so the emission address cannot be read from Redmine.
        report.warn("[guard] redmine_from is not set, and Redmine's REST API cannot tell it: copy the emission "
                    "address from Administration > Settings > Email notifications (Redmine's own headers "
                    "are recognised without it)")


def _check_custom_field_overrides(connection, api, settings: Settings, report: _Report) -> None:
    """A misspelt ``custom_field:NAME`` in allow_override would silently match no line."""
    wanted = sorted(t[len(CUSTOM_FIELD_PREFIX):] for t in settings.allow_override if t.startswith(CUSTOM_FIELD_PREFIX))
    if not wanted:
        return
    try:
        with api.translated_errors("listing custom fields"):
            names = {override_token(f.name) for f in connection.custom_field.all() if f.customized_type == "issue"}
    except DeliveryError as exc:
        report.warn(f"allow_override: custom field names not checked: {exc.reason}")
        return
    for name in wanted:
        if name in names:
            report.ok(f"allow_override: custom field {name!r} exists")
        else:
            report.fail(f"allow_override: no issue custom field is named {name!r}")
