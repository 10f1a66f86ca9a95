"""Thread: is this mail an answer to an existing issue, and to which one?

Redmine marks its notifications with Message-IDs such as
``redmine.issue-12.20261127211428.5@host`` (the issue itself) and
``redmine.journal-40.20261127211527.5@host`` (one of its notes; the middle number is
the note's creation time in UTC), puts the issue's token in ``References``, and tags
the subject ``[Project - Tracker #12]``. Mail clients carry both into replies. A reply
to a mail this program filed itself threads through the ledger (see
``issue_of_own_message``); a reply to a mail it sent (the acknowledgement) through the
verified token in that mail's Message-ID (``outgoing/tokens.py``). Pure: no network.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from typing import Callable

from .lazy import Pattern
from .mail import Mail
from .plan import ThreadRef
from .states import Via

# The same shapes Redmine's mail handler accepts (facts of its format).
_TOKEN = Pattern(r"^redmine\.([a-z0-9_]+)-(\d+)\.(\d+)(?:\.[a-f0-9]+)?@")
#: The start of the Message-IDs of mail the program sends (outgoing/tokens.py reads them whole).
_OUR_TOKEN = Pattern(r"^m2r\.[a-z]+-\d", re.IGNORECASE)
#: Redmine's subject tag is ``\[(?:[^\]]*\s+)?#(\d+)\]``; that expression backtracks
#: quadratically over a long run of spaces or brackets, so subject_issue_id finds the same
#: first match in one pass from these two.
_TAG_END = Pattern(r"#(\d+)\]")
_BRACKET = Pattern(r"[\[\]]")
#: How far before a note's Message-ID time (whole seconds) its issue may have been saved.
_CLOCK_SLACK = timedelta(seconds=5)
#: At most this many Message-IDs of a reply are looked up in the marker field (newest first).
MARKER_LOOKUPS = 3

OwnIssueLookup = Callable[[str], "int | None"]


def issue_of_own_message(message_id: str) -> int | None:
    """The issue a mail with *message_id* was filed as, where no ledger is open (a dry
    run): none is known. A delivery passes the ledger's lookup (once.Delivery.own_issue)
    to route.plan_issue instead."""
    return None


def references(mail: Mail, own_issue: OwnIssueLookup = issue_of_own_message,
               site_key: str | None = None, by_marker: bool = False) -> tuple[ThreadRef, ...]:
    """Every sign that *mail* answers an issue, in the order they are tried: Redmine's
    issue tokens (In-Reply-To, then References newest first), its note tokens (whose
    issue must be searched for, so after the issue tokens Redmine puts beside them),
    the Message-IDs of mail we sent (their token verified with the secret derived from
    *site_key*, the API key), mails we filed, the subject tag. With *by_marker* and no
    sign at all: the other Message-IDs (at most MARKER_LOOKUPS, newest first), for the
    marker field to say which issue a mail filed on another host became."""
    replied_to = tuple(dict.fromkeys((*mail.in_reply_to, *reversed(mail.references))))
    tokens = [ref for ref in map(_token_ref, replied_to) if ref]
    found = [ref for ref in tokens if ref.via == Via.ISSUE] + [ref for ref in tokens if ref.via == Via.JOURNAL]
    ours = [message_id for message_id in replied_to if _OUR_TOKEN.match(message_id)]
    if ours and site_key:
        from .outgoing.tokens import secret_from_key, thread_refs

        found.extend(thread_refs(mail, secret_from_key(site_key)))
    unknown = []
    for message_id in replied_to:
        if not _TOKEN.match(message_id) and message_id not in ours:
            issue_id = own_issue(message_id)
            if issue_id:
                found.append(ThreadRef(Via.OURS, issue_id=issue_id))
            else:
                unknown.append(message_id)
    tag = subject_issue_id(mail.subject)
    if tag:
        found.append(ThreadRef(Via.SUBJECT, issue_id=tag))
    if not found and by_marker and unknown:
        from .mailkey import usable_message_id

        keys = [f"<{message_id}>" for message_id in unknown if usable_message_id(message_id)]
        found = [ThreadRef(Via.MARKER, key=key) for key in keys[:MARKER_LOOKUPS]]
    return tuple(dict.fromkeys(found))


def subject_issue_id(subject: str) -> int | None:
    """The issue number of the first ``[… #N]`` tag: a "#N]" right after a "[", or after
    white space inside an open "[" (no "]" since it)."""
    subject = subject or ""
    brackets = _BRACKET.finditer(subject)
    bracket = next(brackets, None)
    inside = False
    for tag in _TAG_END.finditer(subject):
        while bracket and bracket.start() < tag.start():
            inside = bracket.group() == "["
            bracket = next(brackets, None)
        before = subject[tag.start() - 1] if tag.start() else ""
        if inside and (before == "[" or before.isspace()):
            return int(tag.group(1))
    return None


def _token_ref(message_id: str) -> ThreadRef | None:
    match = _TOKEN.match(message_id)
    if not match:
        return None
    kind, number, stamp = match.group(1), int(match.group(2)), match.group(3)
    if kind == "issue":
        return ThreadRef(Via.ISSUE, issue_id=number)
    if kind == "journal":
        return ThreadRef(Via.JOURNAL, journal_id=number, since=_since(stamp))
    return None  # forum messages and news are not issues


def _since(stamp: str) -> str | None:
    """The token's time, less some slack: the issue is saved just before its note."""
    try:
        moment = datetime.strptime(stamp, "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (moment - _CLOCK_SLACK).strftime("%Y-%m-%dT%H:%M:%SZ")
