"""Parse: bytes → Mail, a typed and decoded view of one message.

Everything the later stages need is decoded here, once, with the lenient compat32
parser (the default policy raises on real-world headers) and the one text decoder in
``charsets``. No later stage touches charsets or MIME again.
"""

from __future__ import annotations

import binascii
import email
import email.errors
import email.utils
import quopri
import re
from email.message import Message
from functools import cached_property
from typing import BinaryIO, Iterator

from . import charsets
from .errors import MailError
from .mimeparse import CUT_TYPE, MAX_DEPTH, parse_slices
from .read import Received
from .valueclass import field, valueclass

_MSGID = re.compile(r"<([^<>\s]+)>")
_ADDRESS_WORD = re.compile(r"[^\s<>()\[\],;:\"@]+@[^\s<>()\[\],;:\"@]+")
_BASE64_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/="
#: Characters handed to the parser, and decoded, at a time.
_SLICE = 1 << 20
_UUENCODE = ("x-uuencode", "uuencode", "uue", "x-uue")
_SIGNATURE_TYPES = {
    "application/pkcs7-signature",
    "application/x-pkcs7-signature",
    "application/pgp-signature",
}


@valueclass(frozen=True, eq=False)
class Attachment:
    """One file of the mail. The bytes stay encoded in the parsed part until written out,
    a slice at a time, so a big attachment is never held decoded in memory."""

    filename: str
    content_type: str
    part: Message = field(repr=False, compare=False)

    def write_to(self, out: BinaryIO | None) -> int:
        """Write the decoded content to *out* (None: only count it); the number of bytes."""
        tally = _Tally(out)
        _write_part(self.part, tally)
        return tally.count

    @cached_property
    def size(self) -> int:
        return self.write_to(None)


@valueclass(frozen=True)
class Address:
    """One mail address and its display name."""

    addr: str
    name: str = ""

    def __str__(self) -> str:
        return f"{self.name} <{self.addr}>" if self.name else self.addr


@valueclass(frozen=True, eq=False)
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
    #: The text/plain parts; the HTML parts as text when there is no plain text.
    body: str
    body_from_html: bool
    #: The HTML parts as text ("" when there are none), for operators who prefer them.
    html_body: str
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
    """The mail, read as far as it can be. What even the lenient reading cannot get past
    is the mail's doing, refused at once (MailError), not counted as a bug of ours."""
    if received.blank():
        raise MailError("empty input: no message on stdin")
    try:
        return _parse(received)
    except (RecursionError, LookupError, UnicodeError, binascii.Error, email.errors.MessageError) as exc:
        raise MailError(f"the mail cannot be read: {type(exc).__name__}: {exc}") from None


def _parse(received: Received) -> Mail:
    msg, cut = parse_slices(received.chunks())
    headers = tuple((name.lower(), charsets.decode_header(value)) for name, value in msg.raw_items())
    # Raw 8-bit bytes (RFC 6532 UTF-8 headers, or junk) come back from the parser as
    # surrogates: read as the text they spell, so none reaches a lookup, the ledger or a log.
    raw = {name.lower(): charsets.recover_8bit(value) for name, value in reversed(list(msg.raw_items()))
           if isinstance(value, str)}
    plain, html = _bodies(msg)
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
        body="\n\n".join(t for t in (plain or html, _cut_note(cut)) if t),
        body_from_html=not plain and bool(html),
        html_body=html,
        attachments=tuple(_attachments(msg)),
        headers=headers,
        received=received,
        message=msg,
    )


def _cut_note(cut: int) -> str:
    return f"[{cut} MIME part(s) nested more than {MAX_DEPTH} levels deep were left out]" if cut else ""


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
    Some mailers encode the whole header, address included; that is decoded first. Raw
    8-bit bytes (RFC 6532: ``José <josé@exämple.org>`` in UTF-8) are read as text first."""
    values = [charsets.recover_8bit(v) for v in values if isinstance(v, str)]
    pairs = _getaddresses(values)
    if not any("@" in addr for _, addr in pairs) and any("=?" in v for v in values):
        pairs = _getaddresses([charsets.decode_header(v) for v in values])
    return [(charsets.decode_header(name), addr.lower()) for name, addr in pairs if "@" in addr]


def _getaddresses(values: list[str]) -> list[tuple[str, str]]:
    """The library's address parser, or, where it fails (it recurses once per group
    ``name:`` and gives up on a thousand of them), every word with an "@" in it."""
    try:
        return email.utils.getaddresses(values)
    except (RecursionError, ValueError, IndexError):
        return [("", word) for value in values for word in _ADDRESS_WORD.findall(value)]


def _addresses(msg: Message, name: str) -> tuple[str, ...]:
    return tuple(addr for _, addr in _split_addresses([v for k, v in msg.raw_items() if k.lower() == name]))


def _first_address(value: str | None) -> Address | None:
    pairs = _split_addresses([value]) if value else []
    return Address(addr=pairs[0][1], name=pairs[0][0]) if pairs else None


def _envelope_sender(received: Received, return_path: str | None) -> str | None:
    if return_path is not None:
        addr = email.utils.parseaddr(charsets.recover_8bit(return_path))[1]
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
    return part.get_content_disposition() == "attachment" or _filename(part) is not None


def _text_of(part: Message) -> str:
    payload = part.get_payload(decode=True)
    return charsets.decode(payload if isinstance(payload, bytes) else b"", part.get_content_charset())


def _leaf_parts(msg: Message):
    """Every non-multipart part; an attached message is one part, not entered; a part cut
    for nesting too deep, none."""
    if msg.is_multipart() and msg.get_content_type() != "message/rfc822":
        for sub in msg.get_payload():
            if isinstance(sub, Message):
                yield from _leaf_parts(sub)
    elif msg.get_content_type() != CUT_TYPE:
        yield msg


def _is_body(part: Message) -> bool:
    return part.get_content_type() in ("text/plain", "text/html") and not _is_attachment(part)


def _bodies(msg: Message) -> tuple[str, str]:
    """The text/plain parts, and the text/html parts made readable; empty parts left out."""
    leaves = [p for p in _leaf_parts(msg) if _is_body(p)]
    plain = [_clean(_text_of(p)) for p in leaves if p.get_content_type() == "text/plain"]
    html_parts = [p for p in leaves if p.get_content_type() == "text/html"]
    html: list[str] = []
    if html_parts:  # the HTML parser loads only for mail that has HTML
        from .htmltext import html_to_text

        html = [_clean(html_to_text(_text_of(p))) for p in html_parts]
    return "\n\n".join(t for t in plain if t), "\n\n".join(t for t in html if t)


def _clean(text: str) -> str:
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(line.rstrip() for line in lines).strip("\n")


def _raw_header(part: Message, name: str) -> str | None:
    """A header as the parser read it: the library's own accessor turns a value with raw
    8-bit bytes into an object that loses them."""
    return next((value for key, value in part.raw_items() if key.lower() == name), None)


def _param(part: Message, header: str, name: str) -> str | tuple | None:
    """A header parameter, read from the raw value: for a header with raw 8-bit bytes
    the library would hand back U+FFFD where the characters were."""
    raw = _raw_header(part, header)
    if raw is None:
        return None
    scratch = Message()
    scratch[header] = charsets.recover_8bit(raw)
    return scratch.get_param(name, header=header)


def _filename(part: Message) -> str | None:
    for header, param in (("content-disposition", "filename"), ("content-type", "name")):
        value = _param(part, header, param)
        if isinstance(value, tuple):  # RFC 2231: (charset, language, %-decoded latin-1 text)
            label, _, text = value
            try:
                name = charsets.decode(text.encode("latin-1", "surrogateescape"), label or None)
            except UnicodeEncodeError:  # raw 8-bit bytes in the value, already read as text
                name = text
        elif value is not None:
            name = charsets.decode_header(email.utils.unquote(value))
        else:
            continue
        if name.strip():
            return name.strip()
    return None


def _attachments(msg: Message):
    for part in _leaf_parts(msg):
        ctype = part.get_content_type()
        if ctype in _SIGNATURE_TYPES or _is_body(part):
            continue
        if ctype == "message/rfc822":
            inner = _payload(part)
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                name = _filename(part) or charsets.decode_header(_raw_header(inner[0], "subject")) or "message"
                yield Attachment(_eml_name(name), ctype, part)
        else:
            yield Attachment(_filename(part) or _unnamed(part), ctype, part)


def _unnamed(part: Message) -> str:
    """A name for a part that has none: Outlook's inline images carry it in the Content-ID
    (``image001.png@01D9…``); otherwise the type's usual extension."""
    content_id = charsets.decode_header(_raw_header(part, "content-id")).strip("<>").split("@")[0]
    if re.fullmatch(r"[\w.-]+\.\w{1,5}", content_id):
        return content_id
    import mimetypes

    extension = mimetypes.guess_extension(part.get_content_type()) or ".bin"
    return f"attachment{extension}"


def _eml_name(name: str) -> str:
    name = re.sub(r'[\\/:*?"<>|\r\n]+', "_", name).strip() or "message"
    return name if name.lower().endswith(".eml") else f"{name}.eml"


class _Tally:
    """A binary sink that passes bytes on to *out* (if any) and counts them."""

    def __init__(self, out: BinaryIO | None = None):
        self.out, self.count = out, 0

    def write(self, data: bytes) -> int:
        if self.out is not None:
            self.out.write(data)
        self.count += len(data)
        return len(data)


def _write_part(part: Message, out: _Tally) -> None:
    if part.get_content_type() == "message/rfc822":
        from email.generator import BytesGenerator

        BytesGenerator(out, mangle_from_=False).flatten(part.get_payload(0))
        return
    for chunk in _decoded_chunks(part):
        out.write(chunk)


def _decoded_chunks(part: Message) -> Iterator[bytes]:
    """The part's content decoded a slice at a time, byte for byte what the library's
    ``get_payload(decode=True)`` gives, without a second copy of the whole.

    Only an ASCII payload is sliced: the library hands 8-bit content back already
    charset-decoded, so such (rare, small) parts are decoded by the library in one piece.
    """
    payload = _payload(part)
    encoding = str(part.get("Content-Transfer-Encoding", "")).strip().lower()
    if not isinstance(payload, str) or not payload.isascii() or encoding in _UUENCODE:
        decoded = part.get_payload(decode=True)
        yield decoded if isinstance(decoded, bytes) else b""
    elif encoding == "base64":
        yield from _base64_chunks(payload)
    elif encoding == "quoted-printable":
        for piece in _line_slices(payload):
            yield quopri.decodestring(piece.encode("ascii"))
    else:
        for piece in _line_slices(payload):
            yield piece.encode("ascii")


def _payload(part: Message):
    """The payload as the parser left it (text, or a list of parts); None where the library
    cannot hand it over undecoded (raw 8-bit text under a label such as ``undefined``,
    which it tries to decode with)."""
    try:
        return part.get_payload()
    except (UnicodeError, LookupError, ValueError):
        return None


def _line_slices(text: str) -> Iterator[str]:
    """*text* in slices of about _SLICE characters, each ending at a line end."""
    start = 0
    while start < len(text):
        end = text.find("\n", start + _SLICE)
        end = len(text) if end < 0 else end + 1
        yield text[start:end]
        start = end


def _base64_chunks(text: str) -> Iterator[bytes]:
    """Base64 decoded in slices: characters outside the alphabet dropped, each slice cut
    at a four-character boundary, nothing read after the first padding character, missing
    or misplaced padding (``AB=C``, ``A===``) forgiven."""
    carry = b""
    for piece in _line_slices(text):
        clean = carry + _base64_only(piece.encode("ascii"))
        padding = clean.find(b"=")
        if padding >= 0:
            yield _base64_last(clean[:padding])
            return
        usable = len(clean) - len(clean) % 4
        yield binascii.a2b_base64(clean[:usable])
        carry = clean[usable:]
    yield _base64_last(carry)


def _base64_last(data: bytes) -> bytes:
    """The last characters of a base64 text, however many (a lone one holds no byte)."""
    if len(data) % 4 == 1:
        data = data[:-1]
    return binascii.a2b_base64(data + b"=" * (-len(data) % 4)) if data else b""


def _base64_only(data: bytes) -> bytes:
    data = data.translate(None, b" \t\r\n")
    if data.translate(None, _BASE64_ALPHABET):  # rare junk: the slow way
        data = bytes(b for b in data if b in _BASE64_ALPHABET)
    return data
