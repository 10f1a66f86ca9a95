"""The one text decoder: every byte string that becomes text goes through here.

Real mail lies about its charset. Japanese senders label CP932 text as Shift_JIS or
ISO-2022-JP (①, ㈱, 髙 are CP932 extensions), European senders label Windows-1252 as
ISO-8859-1, and some send 8-bit text with no label at all. Python's codecs either raise
on those or silently put U+FFFD where the character was recoverable; this module picks
the codec that recovers the text and never raises.
"""

from __future__ import annotations

import codecs
import re
from email.header import decode_header as _split_encoded_words

# Labels whose real-world content is a superset codec.
_SUPERSETS = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "csshiftjis": "cp932",
    "windows-31j": "cp932",
    "cp932": "cp932",
    "x-euc-jp": "euc_jp",
    "euc-jp": "euc_jp",
    "eucjp": "euc_jp",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "us-ascii": "utf-8",  # 8-bit bytes under an ASCII label are usually UTF-8
    "ascii": "utf-8",
    "ks_c_5601-1987": "cp949",
    "euc-kr": "cp949",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "iso-8859-8-i": "iso-8859-8",
}

#: Text codecs that no mail is written in: their labels are read as unknown.
_NOT_CHARSETS = {"undefined", "idna", "punycode", "unicode-escape", "raw-unicode-escape", "mbcs", "oem"}

_JIS_LABELS = {"iso-2022-jp", "iso-2022-jp-1", "iso-2022-jp-2", "iso-2022-jp-3", "csiso2022jp"}

# Codecs tried, in order, for 8-bit text whose label is missing or wrong.
_GUESSES = ("cp932", "euc_jp", "cp1252", "iso-8859-2", "cp1251", "gb18030", "cp949")

_JIS_ESCAPE = re.compile(rb"\x1b(\(B|\(J|\(I|\$@|\$B|\$\(D)")


def decode(data: bytes, label: str | None = None) -> str:
    """Decode *data* that claims to be in charset *label*; never raises, never loses
    a character that some plausible codec would recover."""
    name = _normalise(label)
    if name in _JIS_LABELS or (name is None and b"\x1b$" in data):
        return _decode_jis(data)
    if name is None or name == "utf-8":
        return _decode_unlabelled(data)
    codec = _text_codec(_SUPERSETS.get(name, name))
    if codec is None:
        return _decode_unlabelled(data)
    try:
        return data.decode(codec)
    except (UnicodeError, LookupError, ValueError):  # idna, punycode and the like raise more than decode errors
        return _decode_unlabelled(data, first=codec)


def _text_codec(name: str) -> str | None:
    """The codec named *name* if it turns bytes into text; None for an unknown name, a
    name Python cannot even look up (a NUL in it), and the codecs that are no character
    set: rot13, base64, hex, zlib, bz2, uu, quopri (bytes to bytes), undefined."""
    try:
        info = codecs.lookup(name)
    except (LookupError, ValueError, TypeError):
        return None
    if not getattr(info, "_is_text_encoding", True) or info.name in _NOT_CHARSETS:
        return None
    return info.name


def _normalise(label: str | None) -> str | None:
    if not label:
        return None
    name = label.strip().strip('"').lower()
    if name in ("", "unknown", "unknown-8bit", "x-unknown", "default", "8bit", "binary"):
        return None
    if name in ("utf8", "x-utf8", "utf-8"):
        return "utf-8"
    return name


def _decode_unlabelled(data: bytes, first: str | None = None) -> str:
    """UTF-8 when it is UTF-8, else the first codec that reads the whole text."""
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    if _mostly_utf8(data):
        return _utf8_mending_strays(data)
    for codec in (first, *_GUESSES) if first else _GUESSES:
        if codec == "cp932" and not _plausibly_japanese(data):
            continue
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")


def _mostly_utf8(data: bytes) -> bool:
    """UTF-8 text with a few stray bytes (a pasted Latin-1 word) stays UTF-8."""
    valid = len(re.findall(rb"[\xc2-\xdf][\x80-\xbf]|[\xe0-\xef][\x80-\xbf]{2}|[\xf0-\xf4][\x80-\xbf]{3}", data))
    high = sum(1 for b in data if b >= 0x80)
    return valid > 0 and high - 2 * valid < high / 2


def _utf8_mending_strays(data: bytes) -> str:
    """Decode UTF-8, reading each invalid byte as Windows-1252 instead of U+FFFD."""
    text = data.decode("utf-8", "surrogateescape")
    return re.sub(
        "[\udc80-\udcff]+",
        lambda m: m.group().encode("utf-8", "surrogateescape").decode("cp1252", "replace"),
        text,
    )


def _plausibly_japanese(data: bytes) -> bool:
    """Shift_JIS lead bytes followed by valid trail bytes make up most of the 8-bit text."""
    pairs = len(re.findall(rb"[\x81-\x9f\xe0-\xfc][\x40-\x7e\x80-\xfc]", data))
    high = sum(1 for b in data if b >= 0x80)
    return high > 0 and 2 * pairs >= high * 0.9


def _decode_jis(data: bytes) -> str:
    """ISO-2022-JP, including the CP932 extensions that Python's codec rejects.

    Strict iso2022_jp first; if that fails, each JIS X 0208 pair is mapped to its
    Shift_JIS bytes and the whole decoded as CP932, which holds the NEC and IBM rows.
    """
    try:
        return data.decode("iso2022_jp")
    except UnicodeDecodeError:
        pass
    try:
        return data.decode("iso2022_jp_ext")
    except UnicodeDecodeError:
        pass
    out = bytearray()
    mode = b"(B"
    pos = 0
    for match in _JIS_ESCAPE.finditer(data):
        out += _jis_run_to_sjis(data[pos : match.start()], mode)
        mode = match.group(1)
        pos = match.end()
    out += _jis_run_to_sjis(data[pos:], mode)
    return _decode_unlabelled(bytes(out), first="cp932")


def _jis_run_to_sjis(run: bytes, mode: bytes) -> bytes:
    if mode in (b"(B", b"(J"):
        return run
    if mode == b"(I":
        return bytes(b + 0x80 if 0x21 <= b <= 0x5F else b for b in run)
    if mode == b"$(D":  # JIS X 0212 has no CP932 form
        return b"?" * (len(run) // 2)
    out = bytearray()
    for i in range(0, len(run) - 1, 2):
        j1, j2 = run[i], run[i + 1]
        if not (0x21 <= j1 <= 0x7E and 0x21 <= j2 <= 0x7E):
            out += run[i : i + 2]
            continue
        s1 = ((j1 - 0x21) >> 1) + 0x81
        if s1 > 0x9F:
            s1 += 0x40
        if j1 % 2:
            s2 = j2 + 0x1F + (1 if j2 >= 0x60 else 0)
        else:
            s2 = j2 + 0x7E
        out += bytes((s1, s2))
    if len(run) % 2:
        out += run[-1:]
    return bytes(out)


def decode_header(value: str | None) -> str:
    """A header value as text: raw 8-bit bytes recovered, RFC 2047 words decoded
    (also when a word is split inside a multibyte character), folding removed."""
    if value is None:
        return ""
    value = recover_8bit(value)
    value = re.sub(r"\r?\n[ \t]", " ", value).replace("\r", "").replace("\n", "")
    if "=?" not in value:
        return value.strip()
    try:
        chunks = _split_encoded_words(value)
    except Exception:  # a malformed encoded word is left as it was written
        return value.strip()
    text = []
    for chunk, label in chunks:
        if isinstance(chunk, str):
            text.append(chunk)
        elif label is None:  # the library re-encodes plain text so; a backslash may not survive the way back
            try:
                text.append(chunk.decode("raw-unicode-escape"))
            except UnicodeDecodeError:
                text.append(chunk.decode("latin-1"))
        else:
            text.append(decode(chunk, label))
    return "".join(text).strip()


def recover_8bit(value: str) -> str:
    """A header value whose raw 8-bit bytes the parser kept as surrogates, as the text
    those bytes spell; any other value unchanged."""
    if any("\udc80" <= ch <= "\udcff" for ch in value):
        return decode(value.encode("ascii", "surrogateescape"))
    return value
