"""``m2r-deliver check``: the config is valid; now ask Redmine whether it will work.

One line per finding (``ok``, ``warn``, ``FAIL``); exit 1 when anything failed. Meant for
a person at a terminal, so it prints freely.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any, TextIO

from . import explain
from .config import CUSTOM_FIELD_PREFIX, Settings, override_token
from .errors import EX_CHECK_FAILED, EX_OK, DeliveryError
from .maildir import ensure_maildir
from .ledger import FILE_NAME, Ledger
from .once import longest_attempt, quarantine_dir
from .bounce_check import check_bounce_notes
from .relay_check import RolePermissions, check_relay

#: Where Python's syslog module (glibc's syslog(3)) sends its lines.
SYSLOG_SOCKET = "/dev/log"
MARKER_HOW_TO = (
    "in Redmine: Administration » Custom fields » New custom field » Issues; Format: Text; Name: Message-ID; "
    "tick 'Used as a filter', 'For all projects' and every tracker mail is filed as; then set "
    "[redmine] marker_field = \"Message-ID\" (a key that is not an administrator's needs its id)"
)


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
    _check_log(settings, report)
    _check_guard(settings, report)
    _check_ledger(settings, report)
    _check_outgoing(settings, report)
    from . import redmine as api

    connection = api.connect(settings)
    try:
        with api.translated_errors("asking who the key belongs to"):
            me = connection.user.get("current", include=["memberships"])  # bounce_check reads its roles
    except DeliveryError as exc:
        why = explain.http_status(404) if getattr(exc, "status", None) == 404 else exc.reason
        report.fail(f"Redmine {settings.url}: {why}")
        return EX_CHECK_FAILED
    admin = bool(getattr(me, "admin", False))
    report.ok(f"Redmine {settings.url} answers; the key is {me.login}'s")
    if admin:
        report.ok("the key's user is an administrator")
    else:
        report.warn(f"the key is not an administrator's: every issue is filed as {me.login}")
    resolver = api.Resolver(connection, api.NameCache(settings.state_dir / "names.json", 0, settings.url))
    projects = {}
    for label, values in _value_sets(settings):
        projects.update(_check_values(resolver, api, label, values, report))
    _check_marker(settings, connection, resolver, api, projects, admin, report)
    _check_custom_field_overrides(connection, api, settings, report)
    _check_identity(settings, me.login, admin, resolver, api, report)
    _check_reply_statuses(settings, resolver, api, report)
    served = {p: fields["project_id"] for p, fields in projects.items()}
    roles = RolePermissions(connection, api)  # a role both checks ask about is read once
    check_relay(settings, connection, api, roles, served, admin, report)
    check_bounce_notes(settings, roles, me.raw(), served, report)
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


def _check_reply_statuses(settings: Settings, resolver, api, report: _Report) -> None:
    """The statuses [reply] names (reopen_status, waiting_statuses, resume_status) exist."""
    from .reopen import named

    for key, name in named(settings):
        try:
            found = resolver.status(name)
        except DeliveryError as exc:
            report.fail(f"[reply] {key} {name!r}: {exc.reason}")
            continue
        if found is None:
            names = _existing_names(resolver.redmine, api, "status", "")
            report.fail(f"[reply] {key}: " + (explain.unknown_name(f"status {name!r}", names) if names is not None
                                              else f"status {name!r} not found in Redmine"))
        else:
            report.ok(f"[reply] {key}: status {name!r} is #{found}")


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


def _check_values(resolver, api, label: str, values: dict[str, Any], report: _Report) -> dict[str, dict]:
    """Resolve one set of [issue] values; returns {project: resolved fields} when it can."""
    project = values.pop("project", None)
    if not project:
        report.fail(f"{label}: no project: set [issue] project or pass --project")
        return {}
    try:
        fields, unknown = api.resolve_fields(resolver, project, {k: v for k, v in values.items() if v is not None})
    except DeliveryError as exc:
        missing = getattr(exc, "status", None) == 404
        names = _existing_names(resolver.redmine, api, "project", project) if missing else None
        report.fail(f"{label}: " + (f"project {project!r}: {exc.reason}" if names is None else
                                    explain.unknown_name(f"project {project!r}", names,
                                                         " (or the key's user cannot see it)")))
        return {}
    report.ok(f"{label}: project {project!r} is #{fields['project_id']}")
    for name in unknown:
        names = _existing_names(resolver.redmine, api, name.split(" ")[0], project)
        report.fail(f"{label}: " + (explain.unknown_name(name, names) if names is not None
                                    else f"{name} not found in Redmine"))
    resolved = [k for k in fields if k not in ("project_id",)]
    if resolved:
        report.ok(f"{label}: resolved {', '.join(resolved)}")
    return {project: fields}


def _existing_names(connection, api, kind: str, project: str) -> list[str] | None:
    """The names Redmine has for *kind*, to show next to one it does not; None when the
    kind has no list or Redmine would not give it."""
    listings = {
        "project": lambda: [p.identifier for p in connection.project.all()],
        "tracker": lambda: [t.name for t in connection.tracker.all()],
        "status": lambda: [s.name for s in connection.issue_status.all()],
        "priority": lambda: [p.name for p in connection.enumeration.filter(resource="issue_priorities")],
        "category": lambda: [c.name for c in connection.issue_category.filter(project_id=project)],
        "fixed_version": lambda: [v.name for v in connection.version.filter(project_id=project)],
    }
    if kind not in listings:
        return None
    try:
        with api.translated_errors(f"listing {kind} names"):
            return listings[kind]()
    except DeliveryError:
        return None


def _check_marker(settings: Settings, connection, resolver, api, projects: dict[str, dict], admin: bool,
                  report: _Report) -> None:
    """The marker field must exist, be stored on every issue we file, and work as an exact
    filter for this key: else Redmine cannot vouch for what was filed."""
    name = settings.marker_field
    if not name:
        report.warn("no [redmine] marker_field: this host's ledger alone prevents duplicates (not a second host "
                    f"or a lost state dir); to have Redmine vouch, create one {MARKER_HOW_TO}")
        return
    try:
        definition = resolver.custom_field(name)
    except DeliveryError as exc:
        report.fail(f"marker field {name!r}: {exc.reason}")
        return
    field_id = definition["id"] if definition else None
    if field_id is None and not admin:
        report.fail(f"marker field {name!r}: a key that is not an administrator's cannot look custom fields up by "
                    "name; set [redmine] marker_field to the field's id (the number in its Administration URL)")
        return
    if field_id is None:
        report.fail(f"marker field {name!r} not found; create it {MARKER_HOW_TO}")
        return
    definition = api.custom_field_definition(connection, field_id)
    if definition is None:
        report.warn(f"marker field #{field_id}: the key cannot read custom field definitions; format and "
                    "trackers not checked")
    else:
        _check_marker_definition(definition, projects, report)
    _check_marker_filter(connection, api, field_id, None, "", report)
    for project, fields in projects.items():
        _check_marker_filter(connection, api, field_id, fields["project_id"], f" in project {project!r}", report)


def _check_marker_definition(definition: dict[str, Any], projects: dict[str, dict], report: _Report) -> None:
    label = f"marker field #{definition['id']} {definition.get('name')!r}"
    problems = []
    if definition.get("customized_type") != "issue":
        problems.append(f"it is for {definition.get('customized_type')}s, not issues")
    if definition.get("field_format") != "string":
        problems.append(f"its format is {definition.get('field_format')}, not Text (string)")
    if not definition.get("is_filter"):
        problems.append("it is not 'Used as a filter'")
    if definition.get("multiple"):
        problems.append("it allows multiple values")
    if (definition.get("max_length") or 250) < 250:
        problems.append(f"its maximum length {definition['max_length']} is under 250")
    trackers = {t["id"] for t in definition.get("trackers", ())}
    for project, fields in projects.items():
        if "tracker_id" in fields and fields["tracker_id"] not in trackers:
            problems.append(f"it is not enabled for the tracker #{fields['tracker_id']} used for {project!r}")
    for problem in problems:
        report.fail(f"{label}: {problem}")
    if not problems:
        report.ok(f"{label}: an issue text field used as a filter")


def _check_marker_filter(connection, api, field_id: int, project_id: int | None, where: str,
                         report: _Report) -> None:
    """Redmine silently ignores a filter the key's user cannot use, or a field not enabled
    in the project (and then answers with every issue): ask for a value no issue has and
    expect nothing."""
    try:
        found = api.find_by_marker(connection, field_id, f"<m2r-check.{os.urandom(8).hex()}@check.invalid>",
                                   project_id)
        visible = api.visible_issue_count(connection, project_id)
    except DeliveryError as exc:
        report.fail(f"marker field #{field_id}{where}: {exc.reason}")
        return
    if found is None and visible:
        report.ok(f"marker field #{field_id} works as an exact filter with this key{where}")
    else:
        report.warn(f"marker field #{field_id}{where}: no issues visible yet, so its use as a filter is not verified")


def _check_ledger(settings: Settings, report: _Report) -> None:
    path = settings.state_dir / FILE_NAME
    try:
        with Ledger.open(settings.state_dir, keep_for=settings.keep_for,
                         stale_after=longest_attempt(settings)) as ledger:
            counts = ledger.counts()
    except DeliveryError as exc:
        report.fail(exc.reason)
        return
    waiting = quarantine_dir(settings) / "new"
    held = len(os.listdir(waiting)) if waiting.is_dir() else 0
    report.ok(f"ledger {path}: {sum(counts.values())} mails remembered")
    if held:
        report.warn(f"quarantine {waiting}: {held} mail(s) waiting; fix the cause, then: m2r-deliver replay")


def _check_log(settings: Settings, report: _Report, socket_path: str = SYSLOG_SOCKET) -> None:
    """Where the one line per mail goes, and whether it can get there."""
    if settings.syslog and os.path.exists(socket_path):
        report.ok("log: syslog (facility mail, tag m2r-deliver; read it with: journalctl -t m2r-deliver, "
                  "or in /var/log/mail.log where rsyslog runs)")
    elif settings.syslog:
        report.warn(f"log: no syslog socket {socket_path} on this machine: "
                    + (f"the lines go only to {settings.log_file}" if settings.log_file
                       else "every log line is lost; set [log] file = \"~/.local/state/m2r-deliver/m2r-deliver.log\""))
    if settings.log_file:
        try:
            settings.log_file.parent.mkdir(parents=True, exist_ok=True)
            with open(settings.log_file, "a", encoding="utf-8"):
                pass
        except OSError as exc:
            report.fail(f"log: [log] file {settings.log_file}: not writable: {exc.strerror}")
        else:
            report.ok(f"log: [log] file {settings.log_file}")
    if not settings.syslog and not settings.log_file:
        report.warn("log: [log] syslog = false and no [log] file: every log line is lost; "
                    "set [log] file = \"~/.local/state/m2r-deliver/m2r-deliver.log\"")


def _check_state_dir(settings: Settings, report: _Report) -> None:
    try:
        settings.state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=settings.state_dir, prefix=".check."):
            pass
    except OSError as exc:
        report.fail(f"state dir {settings.state_dir}: not writable: {exc.strerror}")
        return
    report.ok(f"state dir {settings.state_dir} is writable")
    if os.stat(settings.state_dir).st_mode & 0o077:
        report.warn(f"state dir {settings.state_dir} is readable by others (it holds mail metadata)")


def _check_outgoing(settings: Settings, report: _Report) -> None:
    """With [acknowledge] or [relay] on: the way out answers (without sending anything),
    and the templates (loaded and checked with the config) are named."""
    sent = [what for what, on in (("acknowledgements", settings.acknowledge.enabled),
                                  ("relayed notes", settings.relay.enabled)) if on]
    if not sent:
        return
    from .outgoing.destinations import for_settings

    try:
        way = for_settings(settings.outgoing).probe()
    except DeliveryError as exc:
        report.fail(f"[outgoing]: {exc.reason}")
    else:
        report.ok(f"[outgoing]: {' and '.join(sent)} are handed to the {way}, from {settings.outgoing.from_address}")
    for section, text in (("acknowledge", settings.acknowledge.text), ("relay", settings.relay.text)):
        if text is not None:
            report.ok(f"[{section}] template {text.source} is valid")


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
