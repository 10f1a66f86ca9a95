"""Parse: bytes → Mail, a typed and decoded view of one message.

Everything the later stages need is decoded here, once, with the lenient compat32
parser (the default policy raises on real-world headers) and the one text decoder in
``charsets``. No later stage touches charsets or MIME again.
"""

from __future__ import annotations

import email
import email.policy
import email.utils
import re
from dataclasses import dataclass, field
from email.message import Message

from . import charsets
from .htmltext import html_to_text
from .read import Received

_MSGID = re.compile(r"<([^<>\s]+)>")
_SIGNATURE_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
}


@dataclass(frozen=True)
class Attachment:
    filename: str
    content_type: str
    data: bytes = field(repr=False)

    @property
    def size(self) -> int:
        return len(self.data)


@dataclass(frozen=True)
class Address:
    addr: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@dataclass(frozen=True)
class Mail:
    """One message, decoded. Addresses are lower-cased; Message-IDs carry no brackets."""

    message_id: str | None
    subject: str
    sender: Address | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    delivered_to: tuple[str, ...]
    envelope_sender: str | None
    list_id: str | None
    in_reply_to: tuple[str, ...]
    references: tuple[str, ...]
    body: str
    body_from_html: bool
    attachments: tuple[Attachment, ...]
    #: Every header as (lower-case name, decoded value), in order.
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    received: Received = field(repr=False, compare=False)
    #: The parsed message, for detectors that need MIME structure (bounces).
    message: Message = field(repr=False, compare=False)

    def header(self, name: str) -> str | None:
        name = name.lower()
        return next((value for key, value in self.headers if key == name), None)

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [value for key, value in self.headers if key == name]

    @property
    def recipients(self) -> tuple[str, ...]:
        """Every address the mail was sent or delivered to."""
        return self.to + self.cc + self.delivered_to


def parse(received: Received) -> Mail:
    msg = email.message_from_bytes(received.message, policy=email.policy.compat32)
    headers = tuple((name.lower(), charsets.decode_header(value)) for name, value in msg.raw_items())
    raw = {name.lower(): value for name, value in reversed(list(msg.raw_items()))}
    body, from_html = _body(msg)
    return Mail(
        message_id=first_msgid(raw.get("message-id")),
        subject=charsets.decode_header(raw.get("subject")),
        sender=_first_address(raw.get("from")),
        to=_addresses(msg, "to"),
        cc=_addresses(msg, "cc"),
        delivered_to=_addresses(msg, "delivered-to") + _addresses(msg, "x-original-to"),
        envelope_sender=_envelope_sender(received, raw.get("return-path")),
        list_id=_list_id(raw.get("list-id")),
        in_reply_to=_msgids(raw.get("in-reply-to")),
        references=_msgids(raw.get("references")),
        body=body,
        body_from_html=from_html,
        attachments=tuple(_attachments(msg)),
        headers=headers,
        received=received,
        message=msg,
    )


def _msgids(value: str | None) -> tuple[str, ...]:
    return tuple(_MSGID.findall(value or ""))


def first_msgid(value: str | None) -> str | None:
    ids = _msgids(value)
    if ids:
        return ids[0]
    bare = (value or "").strip()
    return bare or None


def _split_addresses(values: list[str]) -> list[tuple[str, str]]:
    """Address syntax is ASCII: split the raw value and decode display names afterwards.
    Some mailers encode the whole header, address included; that is decoded first."""
    pairs = email.utils.getaddresses(values)
    if not any("@" in addr for _, addr in pairs) and any("=?" in v for v in values):
        pairs = email.utils.getaddresses([charsets.decode_header(v) for v in values])
    return [(charsets.decode_header(name), addr.lower()) for name, addr in pairs if "@" in addr]


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    return tuple(addr for _, addr in _split_addresses([v for k, v in msg.raw_items() if k.lower() == name]))


def _first_address(value: str | None) -> Address | None:
    pairs = _split_addresses([value]) if value else []
    return Address(addr=pairs[0][1], name=pairs[0][0]) if pairs else None


def _envelope_sender(received: Received, return_path: str | None) -> str | None:
    if return_path is not None:
        addr = email.utils.parseaddr(return_path)[1]
        return addr.lower() if addr else ""  # "<>" is the null sender
    if received.mbox_sender is not None:
        return received.mbox_sender.lower()
    return None


def _list_id(value: str | None) -> str | None:
    if not value:
        return None
    match = re.search(r"<([^<>]+)>", value)
    return (match.group(1) if match else value).strip().lower()


def _is_attachment(part: Message) -> bool:
    disposition = (part.get("Content-Disposition") or "").split(";")[0].strip().lower()
    return disposition == "attachment" or part.get_filename() is not None


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True) or b""
    return charsets.decode(payload, part.get_content_charset())


def _leaf_parts(msg: Message):
    """Every non-multipart part; an attached message is one part, not entered."""
    if msg.is_multipart() and msg.get_content_type() != "message/rfc822":
        for sub in msg.get_payload():
            if isinstance(sub, Message):
                yield from _leaf_parts(sub)
    else:
        yield msg


def _body(msg: Message) -> tuple[str, bool]:
    """Like Redmine: the text/plain parts; else the text/html ones made readable."""
    leaves = [p for p in _leaf_parts(msg) if not _is_attachment(p) and p.get_content_maintype() == "text"]
    plain = [_clean(_text_of(p)) for p in leaves if p.get_content_type() == "text/plain"]
    plain = [t for t in plain if t]
    if plain:
        return "\n\n".join(plain), False
    html = [_clean(html_to_text(_text_of(p))) for p in leaves if p.get_content_type() == "text/html"]
    html = [t for t in html if t]
    if html:
        return "\n\n".join(html), True
    return "", False


def _clean(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _filename(part: Message) -> str | None:
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = part.get_param(param, header=header)
        if value is None:
            continue
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1 text)
            label, _, text = value
            return charsets.decode(text.encode("latin-1", "surrogateescape"), label or None)
        return charsets.decode_header(email.utils.unquote(value))
    return None


def _attachments(msg: Message):
    for part in _leaf_parts(msg):
        ctype = part.get_content_type()
        if ctype in _SIGNATURE_TYPES:
            continue
        if ctype == "message/rfc822":
            inner = part.get_payload()
            inner = inner[0] if isinstance(inner, list) and inner else None
            if inner is None:
                continue
            name = _filename(part) or charsets.decode_header(inner.get("Subject")) or "message"
            yield Attachment(_eml_name(name), ctype, inner.as_bytes())
        elif _is_attachment(part) or part.get_content_maintype() != "text":
            data = part.get_payload(decode=True) or b""
            yield Attachment(_filename(part) or f"attachment.{part.get_content_subtype()}", ctype, data)


def _eml_name(name: str) -> str:
    name = re.sub(r'[\\/:*?"<>|\r\n]+', "_", name).strip() or "message"
    return name if name.lower().endswith(".eml") else f"{name}.eml"
