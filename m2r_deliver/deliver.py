"""Deliver: carry out a Plan in Redmine (or, on --dry-run, only resolve it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from . import keywords
from .config import Settings
from .errors import ConfigError, RedmineRefused
from .mail import Mail
from .maildir import deliver_to_maildir
from .plan import Plan, PlannedAttachment, size_text


@dataclass(frozen=True)
class Outcome:
    #: "filed", "dropped", "held" or "planned" (dry run).
    decision: str
    issue_id: int | None = None
    url: str | None = None
    #: Where a dropped or held mail was kept.
    saved: Path | None = None


def execute(plan: Plan, mail: Mail, settings: Settings, *, dry_run: bool = False) -> tuple[Outcome, Plan]:
    """Resolve the plan's names and, unless dry-running, file it. Returns the outcome and
    the plan with the ids it resolved to."""
    if plan.action in ("drop", "hold"):
        return set_aside(plan, mail, settings, dry_run=dry_run), plan
    from . import redmine as api  # the HTTP stack loads only here

    connection = api.connect(settings)
    cache = api.NameCache(settings.state_dir / "names.json", settings.cache_ttl, settings.url)
    resolver = api.Resolver(connection, cache)
    keyed = api.resolve_keywords(resolver, plan.project, plan.keywords)
    if not keyed.project:
        raise ConfigError("no project for this mail: set [issue] project, a [[route]] project, or pass --project")
    fields, unknown = api.resolve_fields(resolver, keyed.project, plan.fields)
    if unknown and keyed.project != plan.project and plan.project:
        # The project the mail named lacks a value the config sets: keep the default project.
        named = keyed.project
        keyed = api.resolve_keywords(resolver, plan.project, tuple(k for k in plan.keywords if k.attribute != "project"))
        keyed = replace(keyed, warnings=(f"project {named!r} ignored: it lacks {', '.join(unknown)}", *keyed.warnings))
        fields, unknown = api.resolve_fields(resolver, plan.project, plan.fields)
    if unknown:
        raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key=plan.route)
    if dry_run:
        return Outcome("planned"), _resolved(plan, keyed, fields)
    uploads, refused = api.upload_attachments(connection, cache, [(a, mail.attachments[a.index]) for a in plan.attachments])
    plan = _with_refused(plan, refused)
    try:
        return _file(api, connection, settings, _resolved(plan, keyed, fields), uploads)
    except RedmineRefused as exc:
        candidates = [keyword for keyword, _ in keyed.applied if keyword.attribute != "project"]
        if exc.status != 422 or not candidates:
            raise
        refusal = f"refused by Redmine ({exc.reason}): ignored"
    # A value the mail asked for that Redmine will not take must not cost the mail: try
    # without each keyword in turn, then without all of them.
    fallbacks = [*([k] for k in candidates), candidates]
    for number, dropped in enumerate(fallbacks, 1):
        try:
            return _file(api, connection, settings, _resolved(plan, keyed.without(dropped, refusal), fields), uploads)
        except RedmineRefused as exc:
            if exc.status != 422 or number == len(fallbacks):
                raise


def _file(api, connection, settings: Settings, plan: Plan, uploads: list) -> tuple[Outcome, Plan]:
    issue = {**plan.resolved, "subject": plan.subject, "description": plan.description}
    issue_id, not_taken = api.create_issue(connection, issue, uploads)
    return Outcome("filed", issue_id, f"{settings.url}/issues/{issue_id}"), replace(plan, warnings=(*plan.warnings, *not_taken))


def _resolved(plan: Plan, keyed, fields: dict) -> Plan:
    """The plan as it will be filed: the keywords' project and values over the defaults,
    their lines out of the description."""
    return replace(plan, project=keyed.project, description=keywords.without_lines(plan.description, keyed.lines),
                   warnings=plan.warnings + keyed.warnings, resolved=keyed.over(fields))


def _with_refused(plan: Plan, refused: list[PlannedAttachment]) -> Plan:
    """The plan with the files Redmine would not take marked, named in the description
    (the issue says what is missing) and in the warnings."""
    if not refused:
        return plan
    by_index = {a.index: a for a in refused}
    return replace(
        plan,
        attachments=tuple(by_index.get(a.index, a) for a in plan.attachments),
        description=plan.description + _notes(refused),
        warnings=(*plan.warnings, *(f"{a.filename!r} left out: {a.left_out}" for a in refused)),
    )


def _notes(refused: list[PlannedAttachment]) -> str:
    return "".join(f"\n\n[Attachment not filed: {a.filename} ({size_text(a.size)}): {a.left_out}]" for a in refused)


def set_aside(plan: Plan, mail: Mail, settings: Settings, *, dry_run: bool = False) -> Outcome:
    """A mail a guard stopped, kept byte for byte as received: held mail always in the hold
    Maildir, dropped mail in keep_dropped when set. A failed write is a StateError (the
    mail system keeps the mail), never a lost mail."""
    holding = plan.action == "hold"
    folder = settings.guard.hold if holding else settings.guard.keep_dropped
    if dry_run:
        return Outcome("planned")
    saved = deliver_to_maildir(folder, mail.received.raw) if folder else None
    return Outcome("held" if holding else "dropped", saved=saved)
