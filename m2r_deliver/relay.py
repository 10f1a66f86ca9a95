"""Relay: Redmine's notification of a journal, addressed to the relay account, read back
over REST — the truth is the journal as Redmine's API shows it, never the notification's
text — and turned into a RelayNote for the reply stage (outgoing/stage.py), or dropped
with the reason.

Never relayed: a private note (even when the relay account could see it and Redmine sent
it); a note that came from the requester's own mail (it opens with outsiders.NOTE_HEADER,
or its author is the gateway's own user or the requester's account); a journal of field
changes only, unless it sets a status of [relay] statuses (then a short STATUS mail); a
journal of an issue with no requester recorded (the [sender] requester_field value, else
the requester line opening the description).
"""

from __future__ import annotations

from typing import Any

from . import outsiders, relay_account
from .config import Settings
from .filing import Site, dropped, issue_url
from .mail import Mail
from .plan import Attempt, Outcome, Person, Plan, RelayFile, RelayNote, size_text
from .redmine.issues import custom_values, download_attachment, issue_with_journals
from .route import RELAY_RULE
from .states import Decision, MailKind
from .valueclass import replace


def read(plan: Plan, mail: Mail, settings: Settings, attempt: Attempt, *,
         dry_run: bool = False) -> tuple[Outcome, Plan]:
    """The journal the notification names, as a RelayNote in the plan (``relayed``, or
    ``planned`` on a dry run), or the notification dropped with why it is not relayed."""
    site = Site(settings, attempt)
    issue_id, journal_id = plan.issue_id or 0, plan.journal_id or 0

    def drop(reason: str) -> tuple[Outcome, Plan]:
        outcome, kept = dropped(plan, mail, settings, RELAY_RULE, reason, dry_run)
        return replace(outcome, issue_id=issue_id), kept

    # A relay account that cannot be is the configuration's mistake: the notification is
    # kept (75) until it is mended, never dropped with the staff's answer in it.
    account = relay_account.account(site.directory, settings)
    if account.mail not in mail.recipients:
        return drop(f"not addressed to the relay account {account.login} <{account.mail}>")
    issue = issue_with_journals(site.connection, issue_id)
    if issue is None:
        return drop(f"issue #{issue_id} does not exist or cannot be seen")
    journal = next((j for j in issue.get("journals") or () if j.get("id") == journal_id), None)
    if journal is None:
        return drop(f"issue #{issue_id} has no journal {journal_id}")
    requester = requester_of(issue, site, settings)
    if requester is None:
        return drop(f"issue #{issue_id} records no requester")
    why, kind, status = _not_relayed(journal, requester, site, settings)
    if why is not None:
        return drop(why)
    files = _files(journal, issue, settings.relay.attachments_max)
    note = RelayNote(
        kind=kind, issue_id=issue_id, journal_id=journal_id, subject=str(issue.get("subject") or ""),
        project=str((issue.get("project") or {}).get("name") or ""),
        tracker=str((issue.get("tracker") or {}).get("name") or ""), url=issue_url(settings, issue_id),
        requester=requester, author=str((journal.get("user") or {}).get("name") or ""),
        notes=_text(journal.get("notes")) + "".join(
            f"\n\n[Attachment not included: {f.filename} ({size_text(f.size)})]" for f in files if not f.attached),
        status=status or str((issue.get("status") or {}).get("name") or ""), files=files)
    return Outcome(Decision.PLANNED if dry_run else Decision.RELAYED, issue_id), replace(plan, relay=note)


def requester_of(issue: dict[str, Any], site: Site, settings: Settings) -> Person | None:
    """The requester the issue records: the [sender] requester_field value, else the
    requester line ([sender] requester_header) that opens the description."""
    if settings.requester_field:
        field = site.resolver.custom_field(settings.requester_field)
        value = custom_values(issue).get(field["id"]) if field else None
        for one in value if isinstance(value, list) else [value]:
            if isinstance(one, str) and "@" in one.strip():
                return Person(one.strip().lower(), source="requester field")
    return outsiders.requester_in(outsiders.first_line(issue.get("description")), settings.requester_header)


def _not_relayed(journal: dict[str, Any], requester: Person, site: Site,
                 settings: Settings) -> tuple[str | None, MailKind, str | None]:
    """Why the journal is not mailed to *requester* (None: it is), the mail's kind, and
    for a status mail the status it set (of [relay] statuses, as configured)."""
    if journal.get("private_notes"):
        return "a private note", MailKind.NOTE, None
    notes = _text(journal.get("notes"))
    if outsiders.is_outsider_note(notes):
        return "the requester's own note (it came from their mail)", MailKind.NOTE, None
    author_id = (journal.get("user") or {}).get("id")
    if author_id is not None and author_id == site.directory.me().id:
        return "a note of the gateway's own user", MailKind.NOTE, None
    if author_id is not None:
        accounts = site.accounts((requester.addr,))
        if accounts and accounts[0].id == author_id:
            return "the requester's own note", MailKind.NOTE, None
    details = journal.get("details") or ()
    if notes.strip() or any(d.get("property") == "attachment" and d.get("new_value") for d in details):
        return None, MailKind.NOTE, None
    wanted = {site.resolver.status(name): name for name in settings.relay.statuses}
    for detail in details:
        new = str(detail.get("new_value") or "")
        if (detail.get("property"), detail.get("name")) == ("attr", "status_id") and new.isdigit() and \
                int(new) in wanted:
            return None, MailKind.STATUS, wanted[int(new)]
    return "field changes only (no note, no status of [relay] statuses)", MailKind.NOTE, None


def _files(journal: dict[str, Any], issue: dict[str, Any], limit: int) -> tuple[RelayFile, ...]:
    """The files added in the journal, those that go along first, while together within *limit*."""
    listed = {int(a["id"]): a for a in issue.get("attachments") or () if str(a.get("id", "")).isdigit()}
    found, total = [], 0
    for detail in journal.get("details") or ():
        name = str(detail.get("name") or "")
        if detail.get("property") != "attachment" or not detail.get("new_value") or not name.isdigit():
            continue
        attachment = listed.get(int(name))
        if attachment is None:
            continue  # deleted since
        size = int(attachment.get("filesize") or 0)
        fits = total + size <= limit
        total += size if fits else 0
        found.append(RelayFile(int(name), str(attachment.get("filename") or detail["new_value"]),
                               str(attachment.get("content_type") or "application/octet-stream"), size, fits))
    return tuple(found)


def fetch_files(note: RelayNote, settings: Settings) -> tuple[tuple[RelayFile, bytes], ...]:
    """The contents of the files that go along with *note* (the reply stage's, when it
    composes the mail)."""
    wanted = [f for f in note.files if f.attached]
    if not wanted:
        return ()
    site = Site(settings, Attempt(""))
    return tuple((f, download_attachment(site.connection, f.attachment_id, f.size)) for f in wanted)


def _text(notes: object) -> str:
    return str(notes or "").replace("\r\n", "\n").strip("\n")
