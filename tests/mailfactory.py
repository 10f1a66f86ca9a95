"""Builds test mails as bytes, with the headers and charsets a test asks for."""

from __future__ import annotations

import re
import uuid
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate


def new_msgid(tag: str = "t") -> str:
    return f"{tag}.{uuid.uuid4().hex}@tests.example.org"


def make_mail(
    subject: str = "Printer on floor 3 is jammed",
    body: str = "The printer says PC LOAD LETTER.\nPlease help.",
    *,
    sender: str = "Taro Yamada <taro@example.org>",
    to: str = "request@example.org",
    msgid: str | None = None,
    charset: str = "utf-8",
    headers: dict[str, str] | None = None,
    attachments: list[tuple[str, str, bytes]] = (),
    mbox_from: str | None = None,
) -> bytes:
    text = MIMEText(body, "plain", charset)
    if attachments:
        msg = MIMEMultipart()
        msg.attach(text)
        for filename, ctype, data in attachments:
            part = MIMEApplication(data, _subtype=ctype.split("/", 1)[1])
            part.replace_header("Content-Type", ctype)
            part.add_header("Content-Disposition", "attachment", filename=filename)
            msg.attach(part)
    else:
        msg = text
    msg["From"] = sender
    msg["To"] = to
    if subject is not None:
        msg["Subject"] = Header(subject, charset) if not subject.isascii() else subject
    msg["Date"] = formatdate(localtime=False)
    msg["Message-ID"] = f"<{msgid or new_msgid()}>"
    for name, value in (headers or {}).items():
        msg[name] = value
    data = msg.as_bytes()
    if mbox_from:
        data = f"From {mbox_from} Fri Nov 27 10:00:00 2026\n".encode() + data
    return data


def as_new_message(mail: bytes) -> bytes:
    """The same mail under a new Message-ID: a second delivery the ledger must not take for
    a duplicate (for tests that deliver one text under two configurations)."""
    replaced, count = re.subn(rb"(?im)^Message-I[dD]:[^\r\n]*", f"Message-ID: <{new_msgid('again')}>".encode(), mail,
                              count=1)
    return replaced if count else f"Message-ID: <{new_msgid('again')}>\r\n".encode() + mail
