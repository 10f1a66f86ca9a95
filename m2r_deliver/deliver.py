"""Deliver: carry out a Plan in Redmine (or, on --dry-run, only resolve it)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import Settings
from .errors import ConfigError
from .mail import Mail
from .plan import Plan


@dataclass(frozen=True)
class Outcome:
    #: "filed", "dropped" or "planned" (dry run).
    decision: str
    issue_id: int | None = None
    url: str | None = None


def execute(plan: Plan, mail: Mail, settings: Settings, *, dry_run: bool = False) -> tuple[Outcome, Plan]:
    """Resolve the plan's names and, unless dry-running, file it. Returns the outcome and
    the plan with the ids it resolved to."""
    if plan.action == "drop":
        return Outcome("dropped"), plan
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
