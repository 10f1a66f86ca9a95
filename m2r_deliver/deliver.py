"""Deliver: carry out a Plan in Redmine (or, on --dry-run, only resolve it)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from .config import Settings
from .errors import ConfigError
from .mail import Mail
from .maildir import deliver_to_maildir
from .plan import Plan


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
    resolver = api.Resolver(connection, api.NameCache(settings.state_dir / "names.json", settings.cache_ttl, settings.url))
    if not plan.project:
        raise ConfigError("no project for this mail: set [issue] project, a [[route]] project, or pass --project")
    fields, unknown = api.resolve_fields(resolver, plan.project, plan.fields)
    if unknown:
        raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key=plan.route)
    fields.update(subject=plan.subject, description=plan.description)
    resolved = replace(plan, resolved={k: v for k, v in fields.items() if k not in ("subject", "description")})
    if dry_run:
        return Outcome("planned"), resolved
    uploads = [api.upload_spec(a.filename, a.content_type, a.data) for a in mail.attachments if a.size]
    issue_id = api.create_issue(connection, fields, uploads)
    return Outcome("filed", issue_id, f"{settings.url}/issues/{issue_id}"), resolved


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
