"""Outsiders: who may add a note through the gateway without being acted as themselves.

A sender the gateway files for as someone else (the fallback user or the key's user:
no account, locked, not permitted, not authenticated, an administrator's address
without [sender] authserv_id, or a key that impersonates nobody) is an outsider. An
outsider's reply becomes a note only on an issue of a project the gateway serves, and,
with [reply] outsiders = "requester" (the default), only when the issue records them:

- as its requester: the [sender] requester_field value, or the requester line
  ([sender] requester_header) that opens its description;
- as a participant: the sender of an earlier outsider's note (the ``From:`` line that
  opens it), or, when the address has an account, the issue's author, a watcher or
  the author of one of its notes.

Anything else becomes a new issue. Every outsider's note opens with NOTE_HEADER, so
the issue says who wrote it and the next reply from them is recognised. Pure: the
issue's records are handed in.
"""

from __future__ import annotations

import re
import string
from typing import Any

from .config import Settings
from .plan import Person
from .valueclass import valueclass

#: The first line of a note an outsider wrote ({requester}: ``Name <address>``).
NOTE_HEADER = "From: {requester}"


@valueclass(frozen=True)
class Records:
    """What an issue records of the people in it."""

    author_id: int | None = None
    watcher_ids: frozenset[int] = frozenset()
    journal_user_ids: frozenset[int] = frozenset()
    #: The requester field's value, when the site has one.
    requester_value: Any = None
    #: The first line of the description.
    opening: str = ""
    #: The first line of each note.
    note_openings: tuple[str, ...] = ()


def note_header(person: Person | None) -> str:
    return NOTE_HEADER.format(requester=person if person else "(no sender address)")


def recorded_as(person: Person | None, account_id: int | None, records: Records, requester_header: str) -> str | None:
    """How the issue records *person* (for the log), or None when it does not."""
    if person is None:
        return None
    addr = person.addr.lower()
    value = records.requester_value
    values = value if isinstance(value, list) else [value]
    if any(isinstance(v, str) and v.strip().lower() == addr for v in values):
        return "the requester (requester field)"
    if requester_header and _names(requester_header, addr).fullmatch(records.opening.strip()):
        return "the requester (first line of the description)"
    note_line = _names(NOTE_HEADER, addr)
    if any(note_line.fullmatch(line.strip()) for line in records.note_openings):
        return "the sender of an earlier note"
    if account_id is not None:
        if account_id == records.author_id:
            return "the issue's author"
        if account_id in records.watcher_ids:
            return "a watcher"
        if account_id in records.journal_user_ids:
            return "the author of a note"
    return None


def refusal(person: Person | None, account_id: int | None, issue_id: int, records: Records, settings: Settings, *,
            served: frozenset[int] | None, project_id: int) -> str | None:
    """Why *person*, not acted as, may not add a note to the issue (None: they may): only
    into a project the gateway serves (*served*, None: any) and, unless [reply] outsiders
    = "anyone", only when the issue records them."""
    if served is not None and project_id not in served:
        return f"issue #{issue_id} is in a project this gateway does not serve"
    if settings.reply_outsiders == "anyone":
        return None
    if recorded_as(person, account_id, records, settings.requester_header) is not None:
        return None
    who = person.addr if person else "a mail without a sender address"
    return (f"{who} is not acted as and issue #{issue_id} does not record them as its requester or a participant "
            "([reply] outsiders = requester)")


def is_outsider_note(notes: str) -> bool:
    """Whether a note opens with the line the gateway writes above an outsider's note."""
    line = first_line(notes).strip()
    return line == note_header(None) or _capture(NOTE_HEADER).fullmatch(line) is not None


def requester_in(opening: str, requester_header: str) -> Person | None:
    """The requester a description's first line names, written by *requester_header*
    (None: it names nobody, or the template names no address)."""
    if not requester_header:
        return None
    match = _capture(requester_header).fullmatch(opening.strip())
    addr = match and (match.groupdict().get("addr") or match.groupdict().get("bare"))
    if not match or not addr:
        return None
    return Person(addr.lower(), (match.groupdict().get("name") or "").strip(), "requester line")


_ADDR = r"[^\s<>@]+@[^\s<>@]+"


def _capture(template: str) -> re.Pattern:
    """A line *template* writes, for any address: the first address (and name) captured."""
    pattern, captured = "", False
    for literal, field, _, _ in string.Formatter().parse(template):
        pattern += re.escape(literal)
        if field == "requester" and not captured:
            pattern += rf"(?:(?P<name>[^\n<>]*?)\s*<(?P<addr>{_ADDR})>|(?P<bare>{_ADDR}))"
        elif field == "addr" and not captured:
            pattern += rf"(?P<addr>{_ADDR})"
        elif field is not None:
            pattern += r"[^\n]*?"
        captured = captured or field in ("requester", "addr")
    return re.compile(pattern, re.IGNORECASE)


def first_line(text: str | None) -> str:
    return (text or "").lstrip("\r\n").split("\n", 1)[0].rstrip("\r")


def _names(template: str, addr: str) -> re.Pattern:
    """A line *template* would write for *addr*, whatever display name came with it. A
    template naming only ``{name}`` writes the address only when there was no name."""
    parts = list(string.Formatter().parse(template))
    has_address = any(field in ("requester", "addr") for _, field, _, _ in parts)
    quoted = re.escape(addr)
    pattern = ""
    for literal, field, _, _ in parts:
        pattern += re.escape(literal)
        if field == "addr":
            pattern += quoted
        elif field == "requester":
            pattern += rf"(?:[^\n<>]*<{quoted}>|{quoted})"
        elif field == "name":
            pattern += r"[^\n]*?" if has_address else quoted
    return re.compile(pattern, re.IGNORECASE)
