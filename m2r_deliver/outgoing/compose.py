"""Compose: a mail the program sends, as a typed value, and its bytes.

Headers are RFC 2047-encoded where they are not ASCII; the body is UTF-8 in
quoted-printable or base64 (whichever is shorter), or ISO-2022-JP in 7 bit for old
Japanese clients, falling back to UTF-8 for a text ISO-2022-JP cannot hold (①, ㈱, 髙 and
other CP932-only characters). Every mail is marked as automatic (RFC 3834) and asks
Exchange not to answer it. Files go along as base64 parts of a multipart/mixed mail, their
names in RFC 2231 form when not ASCII. Pure: no network, no state.
"""

from __future__ import annotations

import base64
import email.utils
import io
import quopri
import re
from email.charset import BASE64, QP, Charset
from email.generator import BytesGenerator
from email.header import Header
from email.message import Message

from ..states import MailKind
from ..valueclass import field, valueclass

#: Of the mail being answered, the newest References kept in ours (with its Message-ID).
REFERENCES_KEPT = 10
_LINE = 78


@valueclass(frozen=True)
class OutgoingFile:
    """A file that goes along with a mail."""

    filename: str
    content_type: str
    data: bytes = field(repr=False)


@valueclass(frozen=True)
class OutgoingMail:
    kind: MailKind
    issue_id: int
    journal_id: int | None
    #: The From header: "Helpdesk <request@example.org>".
    from_address: str
    #: (display name, address) of each recipient; the addresses are also the envelope's.
    to: tuple[tuple[str, str], ...]
    subject: str
    body: str
    #: Without brackets, as every Message-ID in the program.
    message_id: str
    in_reply_to: str | None = None
    references: tuple[str, ...] = ()
    #: "utf-8" or "iso-2022-jp" (wanted; see ``charset_used``).
    charset: str = "utf-8"
    #: RFC 3834's keyword: "auto-replied" answers a mail, "auto-generated" does not.
    auto_submitted: str = "auto-replied"
    attachments: tuple[OutgoingFile, ...] = ()

    @property
    def recipients(self) -> tuple[str, ...]:
        return tuple(address for _, address in self.to)

    @property
    def charset_used(self) -> str:
        """The charset the mail is written in: ISO-2022-JP only when it holds every character."""
        if self.charset.lower() != "iso-2022-jp":
            return "utf-8"
        texts = [self.subject, self.body, *(name for name, _ in self.to), _display_name(self.from_address)]
        try:
            for text in texts:
                text.encode("iso-2022-jp")
        except UnicodeEncodeError:
            return "utf-8"
        return "iso-2022-jp"


def subject_tag(project: str, tracker: str, issue_id: int | str, subject: str) -> str:
    """Redmine's subject form: ``[Helpdesk - Support #123] subject``."""
    return one_line(f"[{one_line(project)} - {one_line(tracker)} #{issue_id}] {one_line(subject)}")


def one_line(text: str) -> str:
    """Whitespace (line ends included) folded to single spaces: no header injection."""
    return " ".join((text or "").split())


def references_for(message_id: str | None, references: tuple[str, ...]) -> tuple[str, ...]:
    """The References of an answer to a mail with *message_id* and *references*."""
    chain = [ref for ref in references if ref != message_id][-REFERENCES_KEPT:]
    return tuple(dict.fromkeys([*chain, *([message_id] if message_id else [])]))


def to_bytes(mail: OutgoingMail, *, date: float | None = None) -> bytes:
    """The message as the mail system takes it (``\\n`` line ends)."""
    charset = mail.charset_used
    message = Message()
    message["From"] = _address_header(_display_name(mail.from_address), _address(mail.from_address), charset)
    message["To"] = ", ".join(_address_header(name, address, charset) for name, address in mail.to)
    message["Subject"] = _text_header(mail.subject, charset, "Subject")  # type: ignore[assignment]  # compat32 takes a Header
    message["Date"] = email.utils.formatdate(date, usegmt=True)
    message["Message-ID"] = f"<{mail.message_id}>"
    if mail.in_reply_to:
        message["In-Reply-To"] = f"<{mail.in_reply_to}>"
    if mail.references:
        message["References"] = " ".join(f"<{ref}>" for ref in mail.references)
    message["Auto-Submitted"] = mail.auto_submitted
    message["X-Auto-Response-Suppress"] = "All"
    text = message if not mail.attachments else Message()
    text.set_payload(mail.body if mail.body.endswith("\n") else mail.body + "\n", _body_charset(mail.body, charset))
    if mail.attachments:
        message["MIME-Version"] = "1.0"
        message.set_type("multipart/mixed")
        message.set_payload([text, *map(_file_part, mail.attachments)])
    out = io.BytesIO()
    BytesGenerator(out, mangle_from_=False, maxheaderlen=_LINE).flatten(message)
    return out.getvalue()


def _file_part(attached: OutgoingFile) -> Message:
    part = Message()
    plain = re.fullmatch(r"[\w.+-]+/[\w.+-]+", attached.content_type, re.ASCII)
    part["Content-Type"] = attached.content_type if plain else "application/octet-stream"
    name = one_line(attached.filename).replace("\\", "_").replace('"', "_") or "attachment"
    part.add_header("Content-Disposition", "attachment", filename=name if name.isascii() else ("utf-8", "", name))
    part["Content-Transfer-Encoding"] = "base64"
    part.set_payload(base64.encodebytes(attached.data).decode("ascii"))
    return part


def _body_charset(body: str, charset: str) -> Charset:
    """ASCII as it is; ISO-2022-JP as 7 bit; UTF-8 in the shorter of quoted-printable and
    base64."""
    if body.isascii():
        return Charset("us-ascii")
    chosen = Charset(charset)
    if charset == "utf-8":
        data = body.encode("utf-8")
        qp_length = len(quopri.encodestring(data))
        base64_length = (len(data) + 2) // 3 * 4 * 77 // 76
        chosen.body_encoding = QP if qp_length <= base64_length else BASE64
    return chosen


def _text_header(text: str, charset: str, name: str) -> str | Header:
    text = one_line(text)
    return text if text.isascii() else Header(text, charset, header_name=name)


def _address_header(name: str, address: str, charset: str) -> str:
    return email.utils.formataddr((one_line(name), address), charset=charset)


def _display_name(value: str) -> str:
    return email.utils.parseaddr(value)[0]


def _address(value: str) -> str:
    return email.utils.parseaddr(value)[1]
