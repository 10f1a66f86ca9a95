"""Own bounces: a bounce of mail the program sent (an acknowledgement, a relayed note)
becomes a private note on the issue that mail was about, never an issue, never an answer.

Recognised only by a Message-ID of ours whose token verifies (outgoing/tokens.py), in the
part of the bounce that returns our mail: a message/rfc822 or text/rfc822-headers part, or
headers quoted in the text of a bounce that has no such part. Arriving at the bounce
address ([outgoing] envelope_sender) is a supporting sign, never enough: without a
verifying token the bounce stays dropped and the log says why, so a forged bounce changes
nothing. The mail must first be a bounce by the bounce guard's signs; mail that the loop
guards (Redmine's own, our loop marker) stopped is never looked at.

The failed recipients are flufl.bounce's (``scan_message``: permanent failures only), the
diagnostic each one's Diagnostic-Code or Status in the report's message/delivery-status
part. Pure: no network. ``outgoing.tokens`` is imported only for a bounce that carries
something shaped like our Message-ID, flufl.bounce only for one whose token verified.
"""

from __future__ import annotations

import re
from email.message import Message
from typing import TYPE_CHECKING, Iterator

from .config import Settings
from .guards.addresses import first_match
from .guards.bounce import Bounce
from .mail import Mail
from .plan import Plan, ThreadRef
from .route import plan_drop
from .states import Action, MailKind, Via
from .valueclass import valueclass

if TYPE_CHECKING:
    from .guards import Verdict
    from .outgoing.tokens import Token

#: Guards whose mail is never a bounce of ours to note: noting it could start a loop.
LOOP_GUARDS = ("redmine_own", "loop_marker")
#: A Message-ID header line in returned headers (folded or not), shaped like our tokens.
_OUR_MSGID = re.compile(r"^Message-ID:[ \t]*(?:\r?\n[ \t]+)?<?(m2r\.[^\s<>]{1,200})>?", re.IGNORECASE | re.MULTILINE)
_RETURNED_HEADERS = ("text/rfc822-headers", "message/global-headers")
_RETURNED_MESSAGE = ("message/rfc822", "message/global")
#: Bounds on what is read from a hostile bounce.
PART_TEXT_LIMIT = 64 * 1024
MAX_PARTS = 50
MAX_RECIPIENTS = 20
ADDRESS_LIMIT = 254
DIAGNOSTIC_LIMIT = 300
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]+")


@valueclass(frozen=True)
class Failure:
    """One recipient our mail did not reach, and what the mail system said."""

    address: str
    diagnostic: str


def bounce_or_drop(mail: Mail, verdict: Verdict, settings: Settings) -> Plan:
    """The plan for a mail a guard stopped: a private note on its issue when it is a
    bounce of our own mail, else the guard's drop (its reason saying why a bounce sent
    to our bounce address is not taken for one of ours)."""
    dropped = plan_drop(mail, verdict.guard, verdict.reason, verdict.action)
    if verdict.action != Action.DROP or verdict.guard in LOOP_GUARDS:
        return dropped
    candidates = returned_message_ids(mail)
    to_us = first_match(mail.recipients, _bounce_addresses(settings))
    if not candidates and not to_us:
        return dropped
    is_bounce = verdict.reason if verdict.guard == "bounce" else Bounce().check(mail, settings)
    if not is_bounce:
        return dropped
    token = _verified(candidates, settings.key)
    if token is None:
        why = (f"returned Message-ID <{clean(candidates[0], 120)}> does not verify as ours" if candidates
               else "returns no Message-ID of ours")
        where = f"sent to our bounce address {to_us} but " if to_us else ""
        return plan_drop(mail, verdict.guard, f"{verdict.reason}; {where}{why}", verdict.action)
    failures = failed(mail)
    if not failures:
        return plan_drop(mail, "own_bounce", f"bounce of our {which(token)} of #{token.issue_id} names no "
                         "permanently failed recipient (a delay warning?)")
    return Plan(
        action=Action.BOUNCE_NOTE,
        message_id=mail.message_id,
        sender=mail.sender.addr if mail.sender else None,
        subject=mail.subject,
        route="bounce",
        issue_id=token.issue_id,
        thread=(ThreadRef(Via.OURS, issue_id=token.issue_id),),
        notes=note_text(token, failures),
    )


def _verified(candidates: list[str], key: str) -> Token | None:
    """The first of *candidates* whose token verifies with the site's secret."""
    if not candidates:
        return None
    from .outgoing.tokens import secret_from_key, thread_token  # only for a mail that names one

    secret = secret_from_key(key)
    tokens = (thread_token(candidate, secret) for candidate in candidates)
    return next((token for token in tokens if token is not None and token.verified), None)


def _bounce_addresses(settings: Settings) -> tuple[str, ...]:
    sender = settings.outgoing.envelope_sender
    return (sender.lower(),) if sender else ()


def which(token: Token) -> str:
    """Which of our mails the token names, as a note says it."""
    if token.journal_id is None:
        return "acknowledgement"
    return f"relayed {'note' if token.kind is MailKind.NOTE else 'status change'} (journal {token.journal_id})"


def note_text(token: Token, failures: tuple[Failure, ...]) -> str:
    """The private note: which mail came back, then one line per failed recipient."""
    lines = [f"Our {which(token)} for this issue came back undelivered."]
    lines += [f"Mail to {f.address} could not be delivered: {f.diagnostic}" for f in failures[:MAX_RECIPIENTS]]
    if len(failures) > MAX_RECIPIENTS:
        lines.append(f"… and {len(failures) - MAX_RECIPIENTS} more recipients.")
    return "\n".join(lines)


def returned_message_ids(mail: Mail) -> list[str]:
    """The Message-IDs shaped like ours in the parts that return a mail (never the bounce's
    own headers, never the text of the returned mail's body)."""
    found: list[str] = []
    for part in _report_parts(mail.message):
        kind = part.get_content_type()
        if kind in _RETURNED_MESSAGE:
            inner = part.get_payload()
            returned = inner[0] if isinstance(inner, list) and inner and isinstance(inner[0], Message) else None
            values = [str(v) for v in returned.get_all("message-id") or ()] if returned is not None else []
            found += [m.group(1) for v in values for m in [_OUR_MSGID.match(f"Message-ID: {v.strip()}")] if m]
        elif kind in _RETURNED_HEADERS or kind == "text/plain":
            found += _OUR_MSGID.findall(part_text(part))
    return list(dict.fromkeys(found))


def _report_parts(message: Message) -> Iterator[Message]:
    """The bounce's parts, not descending into a returned message; at most MAX_PARTS."""
    count = 0
    stack = [message]
    while stack and count < MAX_PARTS:
        part = stack.pop(0)
        count += 1
        yield part
        payload = part.get_payload()
        if part.is_multipart() and part.get_content_type() not in _RETURNED_MESSAGE and isinstance(payload, list):
            stack.extend(p for p in payload[:MAX_PARTS] if isinstance(p, Message))


def part_text(part: Message) -> str:
    """A part's text, bounded; any bytes decode."""
    try:
        data = part.get_payload(decode=True)
    except Exception:  # a hostile transfer encoding
        return ""
    if not isinstance(data, bytes):
        return ""
    return data[:PART_TEXT_LIMIT].decode("utf-8", "replace")


def failed(mail: Mail) -> tuple[Failure, ...]:
    """The recipients that failed for good: flufl.bounce's addresses (and any the report
    says failed that it missed), each with its diagnostic."""
    reports = delivery_status(mail.message)
    addresses = [clean(a.decode("ascii", "replace") if isinstance(a, bytes) else str(a), ADDRESS_LIMIT).lower()
                 for a in sorted(_permanent(mail.message))]
    addresses += [address for address, fields in reports.items()
                  if fields.get("action", "").lower().startswith("failed")]
    failures = []
    for address in dict.fromkeys(a for a in addresses if "@" in a):
        fields = reports.get(address, {})
        diagnostic = fields.get("diagnostic-code") or fields.get("status") or _said_in_text(mail, address)
        failures.append(Failure(address, clean(_without_type(diagnostic), DIAGNOSTIC_LIMIT) or "no reason given"))
    return tuple(failures)


def _permanent(message: Message) -> set[bytes]:
    from .log import quiet_libraries

    quiet_libraries("flufl.bounce")
    from flufl.bounce import scan_message

    try:
        return set(scan_message(message))
    except Exception:  # flufl.bounce's detectors raise whatever their parsing meets
        return set()


def delivery_status(message: Message) -> dict[str, dict[str, str]]:
    """The per-recipient fields of the message/delivery-status parts, by address
    (Final-Recipient, else Original-Recipient), names lower-cased."""
    found: dict[str, dict[str, str]] = {}
    for part in _report_parts(message):
        if part.get_content_type() != "message/delivery-status":
            continue
        blocks = part.get_payload()
        for block in blocks[1:MAX_PARTS] if isinstance(blocks, list) else []:
            if not isinstance(block, Message):
                continue
            fields = {name.lower(): " ".join(str(value).split()) for name, value in block.items()}
            recipient = fields.get("final-recipient") or fields.get("original-recipient") or ""
            address = clean(_without_type(recipient).strip("<>"), ADDRESS_LIMIT).lower()
            if address and address not in found:
                found[address] = fields
    return found


def _without_type(value: str) -> str:
    """``smtp; 550 …`` → ``550 …``; ``rfc822; a@b`` → ``a@b``."""
    kind, semicolon, rest = value.partition(";")
    return rest.strip() if semicolon and re.fullmatch(r"[A-Za-z0-9-]{1,20}", kind.strip()) else value.strip()


def _said_in_text(mail: Mail, address: str) -> str:
    """For a bounce without a report part: the first text line naming the address, with
    the lines after it up to a blank line (Postfix indents them, qmail does not)."""
    for part in _report_parts(mail.message):
        if part.get_content_type() != "text/plain":
            continue
        lines = part_text(part).splitlines()
        for number, line in enumerate(lines):
            if address in line.lower():
                said = [line]
                for more in lines[number + 1:number + 6]:
                    if not more.strip():
                        break
                    said.append(more)
                return " ".join(" ".join(said).split())
    return ""


def clean(text: str, limit: int) -> str:
    """One line of at most *limit* characters: control characters and line ends become
    spaces, runs of white space one space."""
    text = " ".join(_CONTROL.sub(" ", text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"
