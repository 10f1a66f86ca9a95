"""Deliver: carry out a Plan in Redmine (or, on --dry-run, only resolve it).

A new issue or a note is filed as the user identity.py chooses, through a connection
that switches to that user (python-redmine takes ``impersonate`` only when the
connection is made). If Redmine refuses to act as them (403, or 412 for an account
locked meanwhile), the mail goes to the fallback instead.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable

from . import identity
from .config import Settings
from .errors import ConfigError, RedmineRefused
from .identity import Acting, Ignored
from .mail import Mail
from .plan import Plan


@dataclass(frozen=True)
class Outcome:
    #: "filed", "dropped" or "planned" (dry run).
    decision: str
    issue_id: int | None = None
    url: str | None = None
    #: The login the issue or note was filed as.
    author: str | None = None


def execute(plan: Plan, mail: Mail, settings: Settings, *, dry_run: bool = False) -> tuple[Outcome, Plan]:
    """Resolve the plan's names and people and, unless dry-running, file it. Returns the
    outcome and the plan as carried out, with the ids it resolved to."""
    if plan.action == "drop":
        return Outcome("dropped"), plan
    from . import redmine as api  # the HTTP stack loads only here

    redmine = _Redmine(api, settings)
    if plan.action == "note":
        return _note(plan, mail, redmine, dry_run)
    return _create(plan, mail, redmine, dry_run)


class _Redmine:
    """One delivery's view of Redmine: the key's connection, names, users."""

    def __init__(self, api, settings: Settings):
        self.api, self.settings = api, settings
        self.connection = api.connect(settings)
        self.resolver = api.Resolver(self.connection,
                                     api.NameCache(settings.state_dir / "names.json", settings.cache_ttl, settings.url))
        self.directory = api.Directory(self.connection, self.resolver)

    def connection_for(self, acting: Acting):
        if not acting.impersonate:
            return self.connection
        return self.api.connect(self.settings, impersonate=acting.impersonate)

    def uploads(self, mail: Mail) -> list[dict[str, Any]]:
        return [self.api.upload_spec(a.filename, a.content_type, a.data) for a in mail.attachments if a.size]

    def accounts(self, addresses: tuple[str, ...]) -> list[identity.Account]:
        """The active accounts of *addresses* (none without an admin key: users cannot be listed)."""
        if not addresses or not self.directory.me().admin:
            return []
        found = (self.directory.account_by_mail(addr) for addr in addresses)
        return [account for account in found if account and account.active]

    def file_as(self, acting: Acting, plan: Plan, do: Callable[[Acting], int]) -> tuple[int, Acting] | Ignored:
        """Run *do* as *acting*; when Redmine refuses that user, once more as the fallback."""
        try:
            return do(acting), acting
        except RedmineRefused as exc:
            if not acting.impersonate or exc.status not in (403, 412):
                raise
            refused = exc
        if acting.account:
            self.directory.forget(acting.account)
        instead = identity.as_unknown(plan.author, f"Redmine refused to act as {acting.impersonate} "
                                      f"({refused.status})", self.directory, self.settings)
        if isinstance(instead, Ignored):
            return instead
        if instead.impersonate == acting.impersonate:
            raise refused
        return do(instead), instead


def _create(plan: Plan, mail: Mail, redmine: _Redmine, dry_run: bool) -> tuple[Outcome, Plan]:
    settings, api = redmine.settings, redmine.api
    if not plan.project:
        raise ConfigError("no project for this mail: set [issue] project, a [[route]] project, or pass --project")
    project_id = redmine.resolver.project(plan.project)
    acting = identity.choose(plan.author, plan.sender_trusted, plan.authentication, redmine.directory, settings,
                             project_id, identity.NEW_ISSUE_PERMISSIONS, dry_run=dry_run)
    if isinstance(acting, Ignored):
        return _dropped(plan, "unknown_user", acting.reason)

    def prepare(acting: Acting) -> tuple[dict[str, Any], identity.RequesterRecord]:
        record = _requester_record(plan, acting, redmine)
        fields = dict(plan.fields)
        if record.set_custom_field:
            fields["custom_fields"] = {**fields.get("custom_fields", {}), settings.requester_field: plan.requester.addr}
        api_fields, unknown = api.resolve_fields(redmine.resolver, plan.project, fields)
        if unknown:
            raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key=plan.route)
        watchers = [a.id for a in redmine.accounts(plan.watchers) if not acting.is_address(a.mail)]
        watchers += [record.watcher_id] if record.watcher_id and record.watcher_id not in watchers else []
        description = f"{record.header}\n\n{plan.description}" if record.header else plan.description
        api_fields.update(subject=plan.subject, description=description)
        if watchers:
            api_fields["watcher_user_ids"] = watchers
        return api_fields, record

    prepared = {acting: prepare(acting)}
    resolved = replace(plan, resolved=_shown(prepared[acting][0], acting, ("subject", "description")))
    if dry_run:
        return Outcome("planned", author=_login(acting)), resolved

    def create(acting: Acting) -> int:
        fields, record = prepared[acting] if acting in prepared else prepare(acting)
        issue_id = api.create_issue(redmine.connection_for(acting), fields, redmine.uploads(mail),
                                    acting=bool(acting.impersonate))
        if record.watcher_id:  # Redmine drops watcher_user_ids the filing user may not set; the requester must watch
            api.add_watcher(redmine.connection, issue_id, record.watcher_id)
        return issue_id

    filed = redmine.file_as(acting, plan, create)
    if isinstance(filed, Ignored):
        return _dropped(plan, "unknown_user", filed.reason)
    issue_id, acting = filed
    return Outcome("filed", issue_id, f"{settings.url}/issues/{issue_id}", _login(acting)), resolved


def _note(plan: Plan, mail: Mail, redmine: _Redmine, dry_run: bool) -> tuple[Outcome, Plan]:
    settings, api = redmine.settings, redmine.api
    found, missing = _answered_issue(plan, redmine)
    if found is None:
        if plan.if_missing is not None:
            return _create(plan.if_missing, mail, redmine, dry_run)
        return _dropped(plan, "reply", f"{missing}; [reply] missing = drop")
    issue, private = found
    acting = identity.choose(plan.author, plan.sender_trusted, plan.authentication, redmine.directory, settings,
                             issue.project_id, identity.NOTE_PERMISSIONS, dry_run=dry_run)
    if isinstance(acting, Ignored):
        return _dropped(plan, "unknown_user", acting.reason)
    api_fields: dict[str, Any] = {}
    if plan.fields:  # attribute changes from the reply's keywords
        api_fields, unknown = api.resolve_fields(redmine.resolver, str(issue.project_id), plan.fields)
        api_fields.pop("project_id", None)
        if unknown:
            raise ConfigError(f"unknown in Redmine: {', '.join(unknown)} (run: m2r-deliver check)", key="reply")
    api_fields["notes"] = plan.notes
    if private:
        api_fields["private_notes"] = True
    watchers = [a.id for a in redmine.accounts(plan.watchers) if a.id not in issue.watcher_ids]
    resolved = replace(plan, issue_id=issue.id,
                       resolved=_shown({**api_fields, "watcher_user_ids": watchers}, acting, ("notes",)))
    if dry_run:
        return Outcome("planned", issue.id, author=_login(acting)), resolved

    def add(acting: Acting) -> int:
        connection = redmine.connection_for(acting)
        for user_id in watchers:  # before the note: adding a watcher twice is harmless, a note is not
            if user_id != (acting.account.id if acting.account else None):
                api.add_watcher(connection, issue.id, user_id)
        api.add_note(connection, issue.id, api_fields, redmine.uploads(mail), acting=bool(acting.impersonate))
        return issue.id

    filed = redmine.file_as(acting, plan, add)
    if isinstance(filed, Ignored):
        return _dropped(plan, "unknown_user", filed.reason)
    _, acting = filed
    return Outcome("filed", issue.id, f"{settings.url}/issues/{issue.id}", _login(acting)), resolved


def _answered_issue(plan: Plan, redmine: _Redmine):
    """((issue, private), None) for the first thread reference that leads to an issue
    taking notes, else (None, why not). A reply to a private note is private."""
    api, settings = redmine.api, redmine.settings
    journal_id = next((ref.journal_id for ref in plan.thread if ref.journal_id), None)
    why, tried = "no issue found for its references", set()
    for ref in plan.thread:
        if ref.issue_id in tried:
            continue
        if ref.issue_id:
            tried.add(ref.issue_id)
            issue = api.issue_state(redmine.connection, ref.issue_id)
        else:
            issue = api.issue_of_journal(redmine.connection, ref.journal_id, ref.since)
        if issue is None:
            why = f"issue #{ref.issue_id} does not exist" if ref.issue_id else f"note {ref.journal_id} not found"
            continue
        if redmine.directory.project(issue.project_id)["status"] != 1:
            why = f"issue #{issue.id} is in a closed or archived project"
            continue
        if issue.closed and settings.reply_closed == "missing":
            why = f"issue #{issue.id} is closed and [reply] closed = missing"
            continue
        return (issue, journal_id in issue.private_journal_ids), None
    return None, why


def _requester_record(plan: Plan, acting: Acting, redmine: _Redmine) -> identity.RequesterRecord:
    person = plan.requester
    accounts = redmine.accounts((person.addr,)) if person and not acting.is_address(person.addr) else []
    return identity.record_requester(person, acting, accounts[0] if accounts else None, redmine.settings)


def _dropped(plan: Plan, guard: str, reason: str) -> tuple[Outcome, Plan]:
    return Outcome("dropped"), replace(plan, action="drop", guard=guard, reason=reason)


def _login(acting: Acting) -> str | None:
    return acting.impersonate or (acting.account.login if acting.account else None)


def _shown(api_fields: dict[str, Any], acting: Acting, hidden: tuple[str, ...]) -> dict[str, Any]:
    """What --dry-run prints as resolved: the API fields (without the long texts) and
    whom the mail is filed as, and why."""
    shown = {k: v for k, v in api_fields.items() if k not in hidden}
    return {**shown, "as": _login(acting), "why": acting.why}
