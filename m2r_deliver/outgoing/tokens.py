"""Tokens: the Message-IDs of the mail the program sends, and reading them back.

``<m2r.ack-123.4f1c…@example.org>`` (the acknowledgement of issue 123) and
``<m2r.note-123-456.9a0b…@example.org>`` (journal 456 of issue 123, relayed). The same
issue, kind and journal always give the same Message-ID, so a mail handed over twice
collapses in the mail system and in the requester's client. A reply carries the token in
In-Reply-To and References; ``thread_token`` reads it back.

The tail is a keyed digest of the rest: without the site's secret nobody can write a
token that verifies, so a stranger cannot thread mail into an issue by forging
References. The secret is derived from the Redmine API key (``secret_from_key``), which
every host of a site shares and no output shows. Pure: no network, no state.
"""

from __future__ import annotations

import hashlib
import hmac
import re

from ..mail import Mail
from ..plan import ThreadRef
from ..states import MailKind, Via
from ..valueclass import valueclass

_DIGEST_HEX = 20
_TOKEN = re.compile(r"^m2r\.(?P<kind>[a-z]+)-(?P<issue>\d{1,12})(?:-(?P<journal>\d{1,12}))?"
                    r"\.(?P<digest>[0-9a-f]{%d})@(?P<domain>[^@\s<>]+)$" % _DIGEST_HEX, re.IGNORECASE)


@valueclass(frozen=True)
class Token:
    kind: MailKind
    issue_id: int
    journal_id: int | None
    #: The digest matches the site's secret: the program wrote this Message-ID.
    verified: bool


def secret_from_key(api_key: str) -> bytes:
    """The site's token secret, from the API key (never the key itself)."""
    return hashlib.sha256(b"m2r-deliver message-id token\0" + api_key.encode("utf-8")).digest()


def message_id(kind: MailKind, issue_id: int, journal_id: int | None, domain: str, secret: bytes) -> str:
    """The Message-ID (without brackets) of *kind* for *issue_id* (and *journal_id*)."""
    if journal_id is None and kind is not MailKind.ACKNOWLEDGEMENT:
        raise ValueError(f"a {kind.value} mail names its journal")
    domain = domain.strip().lower()
    if not domain or not re.fullmatch(r"[^@\s<>]+", domain):
        raise ValueError(f"not a domain for a Message-ID: {domain!r}")
    stem = f"m2r.{kind.value}-{issue_id}" + (f"-{journal_id}" if journal_id is not None else "")
    return f"{stem}.{_digest(stem, domain, secret)}@{domain}"


def thread_token(message_id: str, secret: bytes | None) -> Token | None:
    """The token in *message_id* (brackets optional), or None when it is not one of ours.
    Without *secret*, a token is read but not verified."""
    match = _TOKEN.match(message_id.strip().strip("<>"))
    if not match:
        return None
    try:
        kind = MailKind(match.group("kind").lower())
    except ValueError:
        return None
    journal = int(match.group("journal")) if match.group("journal") else None
    if (journal is None) != (kind is MailKind.ACKNOWLEDGEMENT):
        return None
    stem = f"m2r.{kind.value}-{int(match.group('issue'))}" + (f"-{journal}" if journal is not None else "")
    verified = secret is not None and hmac.compare_digest(
        _digest(stem, match.group("domain").lower(), secret), match.group("digest").lower())
    return Token(kind, int(match.group("issue")), journal, verified)


def thread_refs(mail: Mail, secret: bytes) -> tuple[ThreadRef, ...]:
    """The issues a reply answers through our verified tokens, as thread.references gives
    its signs: In-Reply-To first, then References newest first; each issue once. A token
    that does not verify (forged, or from before a key change) is no sign."""
    found = []
    for candidate in (*mail.in_reply_to, *reversed(mail.references)):
        token = thread_token(candidate, secret)
        if token and token.verified:
            found.append(ThreadRef(Via.OURS, issue_id=token.issue_id))
    return tuple(dict.fromkeys(found))


def _digest(stem: str, domain: str, secret: bytes) -> str:
    return hmac.new(secret, f"{stem}@{domain}".encode("utf-8"), hashlib.sha256).hexdigest()[:_DIGEST_HEX]
