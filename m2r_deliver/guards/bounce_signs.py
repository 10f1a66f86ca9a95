"""The structural signs of a bounce or delivery report, one detector per sign.

A decisive sign is a report by itself: only mail systems send it. The others also occur
on mail people write (a postmaster asking for help), so the bounce guard asks flufl.bounce
to confirm them by finding failed recipients in the mail.
"""

from __future__ import annotations

from email.message import Message
from typing import Protocol

from ..mail import Mail
from .addresses import local_part

REPORT_PARTS = ("message/delivery-status", "message/disposition-notification", "message/feedback-report")


class Sign(Protocol):
    name: str
    decisive: bool

    def find(self, mail: Mail) -> str | None:
        """How the sign shows in *mail*, or None."""


class NullSender:
    """RFC 5321 §4.5.5: reports are sent with an empty reverse path; procmail and Postfix
    write it as ``From MAILER-DAEMON`` in the mbox line."""

    name = "null sender"
    decisive = True

    def find(self, mail: Mail) -> str | None:
        if mail.envelope_sender == "":
            return "null sender (Return-Path: <>)"
        if mail.envelope_sender in ("<>", "mailer-daemon"):
            return f"null sender (envelope {mail.envelope_sender.upper()})"
        return None


class DeliveryReport:
    """RFC 6522 multipart/report, or a report part where a broken mailer put it."""

    name = "delivery report"
    decisive = True

    def find(self, mail: Mail) -> str | None:
        top = mail.message
        if top.get_content_type() == "multipart/report":
            kind = top.get_param("report-type")
            return f"multipart/report; report-type={kind}" if isinstance(kind, str) else "multipart/report"
        parts = top.get_payload() if top.is_multipart() else []  # a list: no text decoded on the way
        for part in parts if isinstance(parts, list) else []:
            if isinstance(part, Message) and part.get_content_type() in REPORT_PARTS:
                return f"{part.get_content_type()} part"
        return None


class MailerDaemonSender:
    """MAILER-DAEMON is the name mail systems send as; no person writes from it."""

    name = "MAILER-DAEMON sender"
    decisive = True

    def find(self, mail: Mail) -> str | None:
        return _sent_by(mail, "mailer-daemon")


class FailedRecipientsHeader:
    """Exim adds X-Failed-Recipients to the bounces it writes, and to nothing else."""

    name = "X-Failed-Recipients"
    decisive = True

    def find(self, mail: Mail) -> str | None:
        value = mail.header("x-failed-recipients")
        return f"X-Failed-Recipients: {value.strip()}" if value else None


class PostmasterSender:
    """Mail systems report as postmaster, but so may a person in that role."""

    name = "postmaster sender"
    decisive = False

    def find(self, mail: Mail) -> str | None:
        return _sent_by(mail, "postmaster")


class ToBounceAddress:
    """Mailing lists send with a ``list-bounces@`` envelope sender, so what is addressed to
    it comes back from machines: reports, but also auto-replies, which flufl.bounce tells apart."""

    name = "sent to a bounce address"
    decisive = False

    def find(self, mail: Mail) -> str | None:
        address = next((a for a in mail.to + mail.cc if local_part(a).rsplit("+", 1)[0].endswith("-bounces")), None)
        return f"addressed to {address}" if address else None


def _sent_by(mail: Mail, local: str) -> str | None:
    """``sent by <address>`` when the From or envelope sender is *local*@some host."""
    for address in (mail.sender.addr if mail.sender else None, mail.envelope_sender):
        if address and "@" in address and local_part(address) == local:
            return f"sent by {address}"
    return None


SIGNS: tuple[Sign, ...] = (NullSender(), DeliveryReport(), MailerDaemonSender(), FailedRecipientsHeader(),
                           PostmasterSender(), ToBounceAddress())
