"""Acknowledge: the one mail a requester gets when their request became an issue.

It answers the mail that was filed (In-Reply-To, References), carries the issue in the
subject's tag and in its Message-ID's token, and its text comes from the operator's
template. Whether it may be sent at all is policy.py's question. Pure: no network.
"""

from __future__ import annotations

import email.utils

from ..errors import ConfigError
from ..mail import Mail
from ..plan import Person
from .compose import OutgoingMail, references_for, subject_tag
from ..config.outgoing import OutgoingSettings
from .templates import Template
from ..states import MailKind
from .tokens import message_id
from ..valueclass import valueclass


@valueclass(frozen=True)
class FiledIssue:
    """The issue as Redmine filed it: names as Redmine shows them."""

    issue_id: int
    subject: str
    project: str
    tracker: str
    #: The issue's page in Redmine.
    url: str


def issue_values(issue: FiledIssue, requester: Person) -> dict[str, str]:
    """The placeholders every template of the program's mail fills from its issue."""
    return {"issue_id": str(issue.issue_id), "subject": issue.subject, "project": issue.project,
            "tracker": issue.tracker, "requester": requester.name or requester.addr, "url": issue.url}


def acknowledgement(issue: FiledIssue, requester: Person, answered: Mail, template: Template,
                    settings: OutgoingSettings, secret: bytes) -> OutgoingMail:
    """The acknowledgement of *issue* to *requester*, answering the mail *answered*."""
    sender = sender_address(settings)
    text = template.fill(issue_values(issue, requester))
    return OutgoingMail(
        kind=MailKind.ACKNOWLEDGEMENT,
        issue_id=issue.issue_id,
        journal_id=None,
        from_address=settings.from_address or sender,
        to=((requester.name, requester.addr),),
        subject=subject_tag(issue.project, issue.tracker, issue.issue_id, issue.subject),
        body=text,
        message_id=message_id(MailKind.ACKNOWLEDGEMENT, issue.issue_id, None, sender.rpartition("@")[2], secret),
        in_reply_to=answered.message_id,
        references=references_for(answered.message_id, answered.references),
        charset=settings.charset,
    )


def sender_address(settings: OutgoingSettings) -> str:
    """The address of [outgoing] from; without one, no mail is sent."""
    address = email.utils.parseaddr(settings.from_address or "")[1]
    if "@" not in address:
        raise ConfigError("no address to send from: set [outgoing] from (e.g. \"Helpdesk <request@example.org>\")",
                          key="outgoing.from")
    return address.lower()
