"""Notes: a reply filed as a note on the issue it answers (or, on --dry-run, only
resolved), as the user identity.py chooses. A sender who is not acted as themselves is
an outsider (outsiders.py) and adds a note only where the issue records them; a reply to
an issue that is gone becomes the new issue its plan carries.
"""

from __future__ import annotations

import time
from typing import Any

from . import identity, keywords, outsiders, reopen
from .errors import RedmineRefused
from .filing import Site, dropped, file_issue, issue_url, login, marker_field, shown, warned
from .identity import Acting, Ignored
from .keyed import Keyed, resolve_keywords
from .mail import Mail
from .plan import Outcome, Plan
from .redmine.find import find_by_marker
from .redmine.issues import (IssueState, add_note, add_relation, add_watcher, find_note, issue_of_journal,
                             issue_state, status_of)
from .states import Decision, StatusChange
from .valueclass import replace


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
    move = (reopen.decide(issue.id, issue.closed, issue.status, issue.closed_on, settings, time.time())
            if _requesters_side(acting, issue) else None)
    if isinstance(move, reopen.FollowUp) and plan.if_missing is not None:
        return _follow_up(plan.if_missing, move, mail, site, dry_run)
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
    changed: tuple[tuple[str, str], ...] = ()
    if reopen.names_statuses(settings):
        status_ids = reopen.statuses(site.resolver.status, settings)
        if isinstance(move, reopen.Move) and "status_id" not in api_fields:  # a status keyword wins
            api_fields["status_id"] = status_ids[move.status]
            changed = ((str(move.change), move.status),)
    watchers = [a.id for a in site.accounts(plan.watchers) if a.id not in issue.watcher_ids]
    moved = {"status_change": {**dict(changed), "was": issue.status}} if changed else {}
    plan = replace(plan, issue_id=issue.id, notes=api_fields["notes"], warnings=plan.warnings + keyed.warnings,
                   resolved={**shown({**api_fields, "watcher_user_ids": watchers}, acting, ("notes",)), **moved})
    if dry_run:
        return Outcome(Decision.PLANNED, issue.id, author=login(acting), changed=changed), plan
    attempt = site.attempt
    # A note carries no marker: only an attempt whose outcome is unknown looks, for the same
    # text written since then (an identical older note, "Thanks!", is not this mail's).
    if attempt.look_first and attempt.since is not None:
        if find_note(site.connection, issue.id, api_fields["notes"], attempt.since):
            return Outcome(Decision.DUPLICATE, issue.id, issue_url(settings, issue.id),
                           note=f"duplicate of a note on #{issue.id}"), plan
        attempt.looked = True

    def note_as(acting: Acting) -> tuple[Plan, tuple[tuple[str, str], ...]]:
        connection = site.connection_for(acting)
        for user_id in watchers:  # before the note: adding a watcher twice is harmless, a note is not
            if user_id != (acting.account.id if acting.account else None):
                add_watcher(connection, issue.id, user_id)
        uploads, filed_plan = site.upload(plan, mail, acting)
        attempt.sent = True
        return _with_status(filed_plan, connection, issue.id, api_fields, uploads, bool(acting.impersonate),
                            changed)

    filed = site.file_as(acting, plan, note_as)
    if isinstance(filed, Ignored):
        return dropped(plan, mail, settings, "unknown_user", filed.reason, dry_run)
    (filed_plan, changed), acting = filed
    return Outcome(Decision.FILED, issue.id, issue_url(settings, issue.id), login(acting),
                   changed=changed), filed_plan


def _requesters_side(acting: Acting, issue: IssueState) -> bool:
    """Whether the reply comes from the requester's side, the only replies that move the
    issue ([reply] reopen_status, waiting_statuses): a sender without an account whom the
    outsiders rule let add the note, or the issue's author. Staff answering by mail leave
    the status to themselves."""
    if not acting.themselves:
        return True
    return acting.account is not None and acting.account.id == issue.records.author_id


def _with_status(plan: Plan, connection, issue_id: int, api_fields: dict[str, Any], uploads: list[dict[str, Any]],
                 acting: bool, changed: tuple[tuple[str, str], ...]) -> tuple[Plan, tuple[tuple[str, str], ...]]:
    """Add the note with its status change. A status Redmine will not set for this user
    (its workflow: 422, or the status silently left as it was) never costs the note: it is
    added without, and the log says so."""
    try:
        add_note(connection, issue_id, api_fields, uploads, acting=acting)
    except RedmineRefused as exc:
        if exc.status != 422 or "status_id" not in api_fields:
            raise
        api_fields = {k: v for k, v in api_fields.items() if k != "status_id"}
        add_note(connection, issue_id, api_fields, uploads, acting=acting)
        return replace(plan, warnings=(*plan.warnings, f"status not changed, refused by Redmine ({exc.reason}): "
                                       "the note was added without it")), ()
    if changed and status_of(connection, issue_id) != api_fields["status_id"]:
        return replace(plan, warnings=(*plan.warnings, f"status {changed[0][1]!r} not taken by Redmine (workflow "
                                       "or permissions): the note was added without it")), ()
    return plan, changed


def _follow_up(new: Plan, follow: reopen.FollowUp, mail: Mail, site: Site, dry_run: bool) -> tuple[Outcome, Plan]:
    """The reply to an issue closed too long ago: a new issue that names the old one, related to it."""
    line = reopen.follow_up_line(follow)
    new = replace(new, description=f"{new.description}\n\n{line}" if new.description else line)
    outcome, filed = file_issue(new, mail, site, dry_run)
    if outcome.decision not in (Decision.FILED, Decision.DUPLICATE, Decision.PLANNED):
        return outcome, filed
    changed = ((str(StatusChange.FOLLOWED_UP), f"#{follow.issue_id}"),)
    if dry_run:
        return replace(outcome, changed=changed), replace(filed, resolved={**(filed.resolved or {}),
                                                                           "relates_to": follow.issue_id})
    if outcome.issue_id and not add_relation(site.connection, outcome.issue_id, follow.issue_id):
        filed = replace(filed, warnings=(*filed.warnings, f"not related to #{follow.issue_id}: Redmine refused"))
    return replace(outcome, changed=changed), filed


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
        if ref.key:  # a mail filed on another host: its issue has the key in the marker field
            marker_id = marker_field(site.resolver, settings)
            found = find_by_marker(site.connection, marker_id, ref.key) if marker_id is not None else None
            ref = replace(ref, issue_id=found)
            if found is None:
                continue
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
        if issue.closed and settings.reply_closed == "missing" and not settings.reopen_status:
            why = f"issue #{issue.id} is closed and [reply] closed = missing"
            continue
        return (issue, journal_id in issue.private_journal_ids), None
    return None, why
