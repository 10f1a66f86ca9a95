"""Reopen: how a reply moves the issue it answers. With [reply] reopen_status, a reply to a
closed issue reopens it to that status when the issue was closed within reopen_within;
one closed longer ago becomes a new issue related to the old one. With waiting_statuses,
a reply to an issue waiting for the requester moves it to resume_status. A status keyword
in the reply wins over both (notes.py). Pure: the issue's state and the time are handed in.
"""

from __future__ import annotations

import calendar
import time
from typing import Callable

from .config import Settings
from .errors import ConfigError
from .states import StatusChange
from .valueclass import valueclass


@valueclass(frozen=True)
class Move:
    """The status the note sets with it, and why."""

    change: StatusChange
    #: The status as the config names it, and the issue's status before.
    status: str
    was: str


@valueclass(frozen=True)
class FollowUp:
    """The issue was closed too long ago to reopen: the reply becomes a new issue related to it."""

    issue_id: int
    closed_on: str | None


def decide(issue_id: int, closed: bool, status: str, closed_on: str | None, settings: Settings,
           now: float) -> Move | FollowUp | None:
    """What a reply does to the status of the issue it answers (None: nothing)."""
    if closed:
        if not settings.reopen_status:
            return None  # [reply] closed decides, as without these keys
        since = _seconds(closed_on)
        if since is None or now - since <= settings.reopen_within:
            return Move(StatusChange.REOPENED, settings.reopen_status, status)
        return FollowUp(issue_id, closed_on)
    waiting = {_fold(name) for name in settings.waiting_statuses}
    if settings.resume_status and _fold(status) in waiting:
        return Move(StatusChange.RESUMED, settings.resume_status, status)
    return None


def statuses(lookup: Callable[[str], int | None], settings: Settings) -> dict[str, int]:
    """The ids of the statuses [reply] names; one Redmine lacks is the config's mistake."""
    found: dict[str, int] = {}
    for key, name in named(settings):
        status_id = lookup(name)
        if status_id is None:
            raise ConfigError(f"status {name!r} not found in Redmine (run: m2r-deliver check)", key=f"reply.{key}")
        found[name] = status_id
    return found


def named(settings: Settings) -> list[tuple[str, str]]:
    """(key, status name) of each status [reply] names."""
    pairs = [("reopen_status", settings.reopen_status), ("resume_status", settings.resume_status),
             *(("waiting_statuses", name) for name in settings.waiting_statuses)]
    return [(key, name) for key, name in pairs if name]


def names_statuses(settings: Settings) -> bool:
    """Whether [reply] asks a reply to move its issue at all."""
    return bool(settings.reopen_status or settings.waiting_statuses)


def follow_up_line(follow: FollowUp) -> str:
    """The line that ends the new issue's description, naming the old issue."""
    when = f", closed on {follow.closed_on[:10]}" if follow.closed_on else ""
    return f"[A reply to #{follow.issue_id}{when}: filed as a new issue related to it]"


def _seconds(stamp: str | None) -> float | None:
    """Redmine's ``2026-12-01T17:47:40Z`` as seconds since the epoch; None when unreadable."""
    try:
        return float(calendar.timegm(time.strptime(stamp or "", "%Y-%m-%dT%H:%M:%SZ")))
    except ValueError:
        return None


def _fold(name: str) -> str:
    return " ".join(name.split()).casefold()
