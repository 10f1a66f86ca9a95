"""Deliver: carry out a Plan in Redmine (or, on --dry-run, only resolve it)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from .config import Settings
from .errors import ConfigError
from .mail import Mail
from .plan import Plan


@dataclass(frozen=True)
class Outcome:
    #: "filed", "duplicate" (already in Redmine), "dropped", "quarantined", or "planned"
    #: (dry run).
    decision: str
    issue_id: int | None = None
    url: str | None = None
    #: Why a duplicate is one, or what else the admin should know.
    note: str | None = None


@dataclass
class Attempt:
    """What the ledger asks of this delivery, and how far it got (which the ledger needs
    to know whether a failed attempt may have filed the mail)."""

    #: The delivery key; stored in the marker field when the site has one.
    key: str
    #: Ask Redmine whether the mail is already filed before filing it.
    look_first: bool = False
    #: Without a marker field, the look searches issues created since then by content,
    #: skipping the issues of other mail.
    since: float | None = None
    not_these: frozenset[int] = frozenset()
    #: Progress: the look found nothing; the request that files was started.
    looked: bool = False
    sent: bool = False


def execute(plan: Plan, mail: Mail, settings: Settings, attempt: Attempt, *,
            dry_run: bool = False) -> tuple[Outcome, Plan]:
    """Resolve the plan's names and, unless dry-running, file it — unless Redmine already
    has it. Returns the outcome and the plan with the ids it resolved to."""
    if plan.action == "drop":
        return Outcome("dropped"), plan
    from . import redmine as api  # the HTTP stack loads only here

    connection = api.connect(settings)
    resolver = api.Resolver(connection, api.NameCache(settings.state_dir / "names.json", settings.cache_ttl, settings.url))
    if not plan.project:
        raise ConfigError("no project for this mail: set [issue] project, a [[route]] project, or pass --project")
    fields, unknown = api.resolve_fields(resolver, plan.project, plan.fields)
    marker_id = _marker_field(resolver, settings)
    if unknown:
        raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key=plan.route)
    if marker_id is not None:
        others = [cf for cf in fields.get("custom_fields", ()) if cf["id"] != marker_id]
        fields["custom_fields"] = [*others, {"id": marker_id, "value": attempt.key}]
    fields.update(subject=plan.subject, description=plan.description)
    resolved = replace(plan, resolved={k: v for k, v in fields.items() if k not in ("subject", "description")})
    if dry_run:
        return Outcome("planned"), resolved
    if attempt.look_first:
        if marker_id is not None:
            found = api.find_by_marker(connection, marker_id, attempt.key)
        else:
            found = api.find_by_content(connection, fields["project_id"], attempt.since or 0, plan.subject,
                                        plan.description, attempt.not_these)
        if found is not None:
            return Outcome("duplicate", found, _url(settings, found), note=f"duplicate of #{found}"), resolved
        attempt.looked = True
    uploads = [api.upload_spec(a.filename, a.content_type, a.data) for a in mail.attachments if a.size]
    attempt.sent = True
    issue_id, stored = api.create_issue(connection, fields, uploads)
    note = None
    if marker_id is not None and stored.get(marker_id) != attempt.key:
        note = (f"Redmine did not store the marker in custom field #{marker_id} (is it enabled for this project "
                "and tracker, and editable by the key's user? run: m2r-deliver check)")
    return Outcome("filed", issue_id, _url(settings, issue_id), note=note), resolved


def _marker_field(resolver, settings: Settings) -> int | None:
    if not settings.marker_field:
        return None
    found = resolver.custom_field(settings.marker_field)
    if found is None:
        raise ConfigError(f"issue custom field {settings.marker_field!r} not found (a key that is not an "
                          "administrator's must give its id; run: m2r-deliver check)", key="redmine.marker_field")
    return found


def _url(settings: Settings, issue_id: int) -> str:
    return f"{settings.url}/issues/{issue_id}"
