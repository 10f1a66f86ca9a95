"""Relayed: a staff member's public note (or a status change of [relay] statuses) mailed to
the issue's requester.

It threads under the acknowledgement of the issue (In-Reply-To and References: its
Message-ID, which the token scheme gives for any issue), carries the issue in the
subject's tag (``Re: [Helpdesk - Support #123] subject``) and one Message-ID per journal,
so the same journal relayed twice is one mail to the mail system and the requester's
client. It is not an answer to a mail of theirs: ``Auto-Submitted: auto-generated``.
Whether it may be sent is policy.py's (its recipient rules). Pure: no network.
"""

from __future__ import annotations

from ..config.outgoing import OutgoingSettings
from ..plan import RelayFile, RelayNote
from ..states import MailKind
from .acknowledge import FiledIssue, issue_values, sender_address
from .compose import OutgoingFile, OutgoingMail, subject_tag
from .templates import Template
from .tokens import message_id


def relayed_mail(note: RelayNote, template: Template, settings: OutgoingSettings, secret: bytes,
                 files: tuple[tuple[RelayFile, bytes], ...] = ()) -> OutgoingMail:
    """The mail that relays *note* to its requester, with *files* (the contents of those of
    its files that go along)."""
    sender = sender_address(settings)
    domain = sender.rpartition("@")[2]
    requester = note.requester
    issue = FiledIssue(note.issue_id, note.subject, note.project, note.tracker, note.url)
    text = template.fill({**issue_values(issue, requester), "author": note.author, "notes": note.notes,
                          "status": note.status}).lstrip("\n")
    acknowledgement = message_id(MailKind.ACKNOWLEDGEMENT, note.issue_id, None, domain, secret)
    return OutgoingMail(
        kind=note.kind,
        issue_id=note.issue_id,
        journal_id=note.journal_id,
        from_address=settings.from_address or sender,
        to=((requester.name, requester.addr),),
        subject="Re: " + subject_tag(note.project, note.tracker, note.issue_id, note.subject),
        body=text,
        message_id=message_id(note.kind, note.issue_id, note.journal_id, domain, secret),
        in_reply_to=acknowledgement,
        references=(acknowledgement,),
        charset=settings.charset,
        auto_submitted="auto-generated",
        attachments=tuple(OutgoingFile(f.filename, f.content_type, data) for f, data in files),
    )
