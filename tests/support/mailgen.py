"""Hypothesis strategies for hostile mail: structural generators (headers, MIME trees,
HTML, encodings, raw bytes) and mutations of real mails."""

from __future__ import annotations

from pathlib import Path

from hypothesis import strategies as st

#: Charset labels that real mail uses, that lie, and that name no character set at all.
CHARSETS = ["utf-8", "us-ascii", "iso-8859-1", "windows-1252", "shift_jis", "iso-2022-jp", "euc-jp", "gb2312",
            "ks_c_5601-1987", "utf-7", "x-unknown", "unknown-8bit", "rot13", "base64", "hex", "zlib", "bz2",
            "uu", "quopri", "undefined", "idna", "punycode", "utf-8\x00", "", '"', "utf-16", "utf-32"]
ENCODINGS = ["7bit", "8bit", "binary", "base64", "quoted-printable", "x-uuencode", "BASE64", "junk", ""]
TYPES = ["text/plain", "text/html", "application/octet-stream", "image/png", "message/rfc822",
         "message/delivery-status", "application/pkcs7-signature", "text/calendar", "multipart/alternative",
         "multipart/mixed", "multipart/report", "", "text", "/", "multipart/"]
HEADER_NAMES = ["From", "To", "Cc", "Reply-To", "Sender", "Subject", "Message-ID", "In-Reply-To", "References",
                "Date", "Return-Path", "Delivered-To", "X-Original-To", "Auto-Submitted", "Precedence", "List-Id",
                "X-Auto-Response-Suppress", "Authentication-Results", "X-Failed-Recipients", "X-Redmine-Host",
                "X-Mailer", "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "MIME-Version",
                "X-Loop", "Received", "X-Junk"]
#: Fragments that have broken parsers: quoting, grouping, comments, encoded words, escapes.
FRAGMENTS = ['"', "\\", "(", ")", "<", ">", "@", ",", ";", ":", "=?", "?=", "=?utf-8?q?", "=?utf-8?b?", "?q?",
             "=C3=A9", "=\n", "\r", "\n", "\n ", "\t", "\x00", "\x0b", "\x1c", "\xa0", "[", "]", "#1]", "[#",
             "<ul><li>", "<a ", "<!--", "</", "&amp;", "&#x", "--", "> ", "On x wrote:", "From: ", "Sent: ",
             "redmine.issue-1.20261127211428.5@h", "xn--", "%", "'", "*0*=", "*=utf-8''", "\u2028", "é", "漢"]
ENCODE = ["utf-8", "latin-1", "cp932", "surrogate"]


def _to_bytes(text: str, how: str) -> bytes:
    if how == "surrogate":
        return text.encode("utf-8", "surrogateescape") if text else b""
    return text.encode(how, "replace")


@st.composite
def texts(draw, max_parts: int = 12) -> bytes:
    """Text built from hostile fragments, words and repetitions, in some encoding."""
    parts = draw(st.lists(st.one_of(
        st.sampled_from(FRAGMENTS),
        st.text(max_size=12),
        st.tuples(st.sampled_from(FRAGMENTS), st.integers(1, 400)).map(lambda p: p[0] * p[1]),
    ), max_size=max_parts))
    data = _to_bytes("".join(parts), draw(st.sampled_from(ENCODE)))
    if draw(st.booleans()):
        data += draw(st.binary(max_size=8))
    return data


def _param_value(draw) -> bytes:
    return draw(st.sampled_from([b"", b"x", b'"quoted; value"', b"a\xff\xfe", b"*=x", b"utf-8''%e2%82%ac.txt",
                                 b"=?utf-8?q?name?=.pdf", b"x" * 300]))


@st.composite
def headers(draw) -> bytes:
    lines = []
    for _ in range(draw(st.integers(0, 10))):
        name = draw(st.sampled_from(HEADER_NAMES)).encode()
        value = draw(texts(6))
        value = value.replace(b"\n", b"\n ") if draw(st.booleans()) else value
        lines.append(name + b": " + value)
    return b"\n".join(lines) + (b"\n" if lines else b"")


@st.composite
def parts(draw, depth: int = 0) -> bytes:
    """One MIME entity: headers, then a leaf body or nested parts."""
    ctype = draw(st.sampled_from(TYPES)).encode()
    head = b"Content-Type: " + ctype
    if draw(st.booleans()):
        head += b"; charset=" + draw(st.sampled_from(CHARSETS)).encode("utf-8", "replace")
    if draw(st.booleans()):
        head += b"; name=" + _param_value(draw)
    head += b"\n"
    if draw(st.booleans()):
        head += b"Content-Transfer-Encoding: " + draw(st.sampled_from(ENCODINGS)).encode() + b"\n"
    if draw(st.booleans()):
        head += b"Content-Disposition: " + draw(st.sampled_from([b"attachment", b"inline", b"x"])) + b"; filename" + \
            draw(st.sampled_from([b"=", b"*=", b"*0*=", b"*1="])) + _param_value(draw) + b"\n"
    if ctype.startswith(b"multipart") and depth < 4:
        boundary = draw(st.sampled_from([b"b", b"=_x", b"", b"b b", b"--"]))
        head = head.replace(b"\n", b"; boundary=\"" + boundary + b"\"\n", 1)
        children = draw(st.lists(parts(depth + 1), max_size=3))
        body = b"".join(b"--" + boundary + b"\n" + child + b"\n" for child in children)
        if draw(st.booleans()):
            body += b"--" + boundary + b"--\n"
    elif ctype == b"message/rfc822" and depth < 4:
        body = draw(headers()) + b"\n" + draw(parts(depth + 1))
    else:
        body = draw(st.one_of(texts(), st.binary(max_size=64),
                              st.sampled_from([b"AB=C", b"A===", b"QUJD\nRA=C", b"begin 644 x\n#86)C\n`\nend\n"])))
    return head + b"\n" + body


@st.composite
def nested(draw) -> bytes:
    """Deep nesting: multiparts in multiparts, or messages in messages."""
    depth = draw(st.integers(1, 400))
    if draw(st.booleans()):
        return b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(depth))
    return b"".join(b"Content-Type: message/rfc822\n\nFrom: x@example.org\n" for _ in range(depth))


@st.composite
def mails(draw) -> bytes:
    """A whole message, often almost right, sometimes nothing like one."""
    shape = draw(st.sampled_from(["mime", "mime", "mime", "nested", "headers only", "no headers", "bytes"]))
    if shape == "bytes":
        return draw(st.binary(max_size=400))
    if shape == "no headers":
        return draw(texts())
    base = (b"From: " + draw(st.sampled_from([b"Ann <ann@example.org>", b"", b"\xe5\xff@x", b"postmaster@example.org",
                                                b"Jos\xc3\xa9 <jos\xc3\xa9@ex\xc3\xa4mple.org>"])) +
            b"\nTo: help@example.org\nSubject: " + draw(texts(4)) + b"\n")
    if draw(st.booleans()):
        base += b"Message-ID: " + draw(st.sampled_from([b"<fuzz-%d@example.org>" % draw(st.integers(0, 10**6)),
                                                          b'abc" decision=filed', b"<\xe9\xff@x>", b"<1@x>", b""])) + b"\n"
    data = base + draw(headers())
    if shape == "nested":
        data += draw(nested()) + b"\ndeep\n"
    elif shape == "mime":
        data += draw(parts())
    if draw(st.booleans()):
        data = b"From sender@example.org Mon Nov 30 10:00:00 2026\n" + data
    if draw(st.booleans()):
        data = data.replace(b"\n", b"\r\n")
    return data


def corpus_mails(corpus: Path) -> list[Path]:
    return sorted(p for p in corpus.rglob("*") if p.is_file() and p.name != "README.md")


@st.composite
def mutated(draw, files: list[Path]) -> bytes:
    """A real mail with a few bytes changed: flipped, cut, repeated, or hostile text spliced in."""
    data = bytearray(draw(st.sampled_from(files)).read_bytes())
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        op = draw(st.sampled_from(["flip", "cut", "truncate", "repeat", "splice", "delete line"]))
        if op == "flip":
            data[at] = draw(st.integers(0, 255))
        elif op == "cut":
            del data[at:at + draw(st.integers(1, 200))]
        elif op == "truncate":
            del data[at:]
        elif op == "repeat":
            data[at:at] = bytes(data[at:at + draw(st.integers(1, 60))]) * draw(st.integers(2, 200))
        elif op == "splice":
            data[at:at] = draw(texts(4))
        else:
            end = data.find(b"\n", at)
            del data[at:end + 1 if end >= 0 else len(data)]
    return bytes(data)
