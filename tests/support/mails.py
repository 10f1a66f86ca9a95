"""Builds test mails as bytes, with the headers and charsets a test asks for, and parses
them the way the program does."""

from __future__ import annotations

import io
import re
import uuid
from email.header import Header
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from email.utils import formatdate

from m2r_deliver.mail import Mail, parse
from m2r_deliver.read import read_message


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


def parsed(data: bytes) -> Mail:
    """*data* read and parsed as the program does, before any guard or route."""
    return parse(read_message(io.BytesIO(data)))


def sjis_to_jis(data: bytes) -> bytes:
    """ISO-2022-JP bytes for CP932 text (what Outlook's CP50220 writes), built by hand."""
    out, i, kanji = bytearray(), 0, False
    while i < len(data):
        s1 = data[i]
        if s1 < 0x80:
            if kanji:
                out += b"\x1b(B"
                kanji = False
            out.append(s1)
            i += 1
            continue
        if not kanji:
            out += b"\x1b$B"
            kanji = True
        s2 = data[i + 1]
        i += 2
        s1 -= 0x40 if s1 >= 0xE0 else 0
        j1 = (s1 - 0x81) * 2 + 0x21
        if s2 >= 0x9F:
            j1, j2 = j1 + 1, s2 - 0x7E
        else:
            j2 = s2 - 0x1F - (1 if s2 >= 0x80 else 0)
        out += bytes((j1, j2))
    return bytes(out + (b"\x1b(B" if kanji else b""))
