"""Notes: a reply filed as a note on the issue it answers (or, on --dry-run, only
resolved), as the user identity.py chooses. A sender who is not acted as themselves is
an outsider (outsiders.py) and adds a note only where the issue records them; a reply to
an issue that is gone becomes the new issue its plan carries.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from . import identity, keywords, outsiders
from .filing import Site, dropped, file_issue, issue_url, login, shown, warned
from .identity import Acting, Ignored
from .keyed import Keyed, resolve_keywords
from .mail import Mail
from .plan import Outcome, Plan
from .redmine.issues import IssueState, add_note, add_watcher, find_note, issue_of_journal, issue_state
from .states import Decision


def file_note(plan: Plan, mail: Mail, site: Site, dry_run: bool) -> tuple[Outcome, Plan]:
    settings = site.settings
    found, missing = _answered_issue(plan, site)
    if found is None:
        if plan.if_missing is not None and settings.reply_missing == "new":
            return file_issue(plan.if_missing, mail, site, dry_run)
        return dropped(plan, mail, settings, "reply", f"{missing}; [reply] missing = drop", dry_run)
    issue, private = found
    acting = identity.choose(plan.author, plan.sender_trusted, plan.authentication, site.directory, settings,
                             issue.project_id, identity.NOTE_PERMISSIONS, dry_run=dry_run)
    if isinstance(acting, Ignored):
        return dropped(plan, mail, settings, "unknown_user", acting.reason, dry_run)
    plan = warned(plan, acting)
    header = ""
    if not acting.themselves:
        refusal = _outsider_refusal(plan, issue, site)
        if refusal is not None:
            if plan.if_missing is None:
                return dropped(plan, mail, settings, "reply", refusal, dry_run)
            instead = plan.if_missing
            return file_issue(replace(instead, warnings=(*instead.warnings, f"not a note on #{issue.id}: {refusal}")),
                               mail, site, dry_run)
        header = outsiders.note_header(plan.author)
    served = site.served(plan)
    if served is not None and issue.project_id not in served:
        keyed = Keyed(None, (), (f"keywords ignored: issue #{issue.id} is in a project this gateway does not serve",)
                      if plan.keywords else ())
    else:
        keyed = resolve_keywords(site.resolver, str(issue.project_id), plan.keywords, site.limits(plan))
    api_fields: dict[str, Any] = keyed.over({})
    api_fields.pop("project_id", None)
    text = keywords.without_lines(plan.notes, keyed.lines)
    api_fields["notes"] = f"{header}\n\n{text}" if header and text else header or text
    if private:
        api_fields["private_notes"] = True
    watchers = [a.id for a in site.accounts(plan.watchers) if a.id not in issue.watcher_ids]
    plan = replace(plan, issue_id=issue.id, notes=api_fields["notes"], warnings=plan.warnings + keyed.warnings,
                   resolved=shown({**api_fields, "watcher_user_ids": watchers}, acting, ("notes",)))
    if dry_run:
        return Outcome(Decision.PLANNED, issue.id, author=login(acting)), plan
    attempt = site.attempt
    # A note carries no marker: only an attempt whose outcome is unknown looks, for the same
    # text written since then (an identical older note, "Thanks!", is not this mail's).
    if attempt.look_first and attempt.since is not None:
        if find_note(site.connection, issue.id, api_fields["notes"], attempt.since):
            return Outcome(Decision.DUPLICATE, issue.id, issue_url(settings, issue.id),
                           note=f"duplicate of a note on #{issue.id}"), plan
        attempt.looked = True

    def note_as(acting: Acting) -> Plan:
        connection = site.connection_for(acting)
        for user_id in watchers:  # before the note: adding a watcher twice is harmless, a note is not
            if user_id != (acting.account.id if acting.account else None):
                add_watcher(connection, issue.id, user_id)
        uploads, filed_plan = site.upload(plan, mail, acting)
        attempt.sent = True
        add_note(connection, issue.id, api_fields, uploads, acting=bool(acting.impersonate))
        return filed_plan

    filed = site.file_as(acting, plan, note_as)
    if isinstance(filed, Ignored):
        return dropped(plan, mail, settings, "unknown_user", filed.reason, dry_run)
    filed_plan, acting = filed
    return Outcome(Decision.FILED, issue.id, issue_url(settings, issue.id), login(acting)), filed_plan


def _outsider_refusal(plan: Plan, issue: IssueState, site: Site) -> str | None:
    """outsiders.refusal with what Redmine records of the issue and the sender."""
    settings, person = site.settings, plan.author
    accounts = site.accounts((person.addr,)) if person else []
    field = site.resolver.custom_field(settings.requester_field) if settings.requester_field else None
    records = replace(issue.records, requester_value=(issue.custom_values or {}).get(field["id"]) if field else None)
    return outsiders.refusal(person, accounts[0].id if accounts else None, issue.id, records, settings,
                             served=site.served(plan), project_id=issue.project_id)


def _answered_issue(plan: Plan, site: Site) -> tuple[tuple[IssueState, bool] | None, str | None]:
    """((issue, private), None) for the first thread reference that leads to an issue
    taking notes, else (None, why not). A reply to a private note is private."""
    settings = site.settings
    journal_id = next((ref.journal_id for ref in plan.thread if ref.journal_id), None)
    why, tried = "no issue found for its references", set()
    for ref in plan.thread:
        if ref.issue_id in tried:
            continue
        if ref.issue_id:
            tried.add(ref.issue_id)
            issue = issue_state(site.connection, ref.issue_id)
        elif ref.journal_id:
            issue = issue_of_journal(site.connection, ref.journal_id, ref.since)
        else:
            continue  # neither an issue nor a note to look up
        if issue is None:
            why = f"issue #{ref.issue_id} does not exist" if ref.issue_id else f"note {ref.journal_id} not found"
            continue
        if site.directory.project(issue.project_id)["status"] != 1:
            why = f"issue #{issue.id} is in a closed or archived project"
            continue
        if issue.closed and settings.reply_closed == "missing":
            why = f"issue #{issue.id} is closed and [reply] closed = missing"
            continue
        return (issue, journal_id in issue.private_journal_ids), None
    return None, why
