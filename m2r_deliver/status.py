"""``m2r-deliver status``: what the ledger holds — counts by outcome, the quarantine,
the mail in retry, and the most recent outcomes. For a person at a terminal."""

from __future__ import annotations

import os
import time
from typing import TextIO

from .config import Settings
from .errors import EX_CHECK_FAILED, EX_OK, StateError
from .ledger import FILE_NAME, Ledger, Row
from .states import RowState
from .once import longest_attempt, quarantine_dir


def status(settings: Settings, out: TextIO, recent: int = 20) -> int:
    path = settings.state_dir / FILE_NAME
    if not path.exists():
        print(f"ledger      {path}: none yet (nothing delivered with this state dir)", file=out)
        return EX_OK
    try:
        with Ledger.open(settings.state_dir, keep_for=settings.keep_for,
                         stale_after=longest_attempt(settings)) as ledger:
            counts = ledger.counts()
            retrying = ledger.in_retry(limit=50)
            latest = ledger.recent(limit=recent)
    except StateError as exc:
        print(f"FAIL {exc.reason}", file=out)
        return EX_CHECK_FAILED
    print(f"ledger      {path}: {sum(counts.values())} mails remembered "
          f"(each for {_days(settings.keep_for)} after its last attempt)", file=out)
    states = (RowState.FILED, RowState.DROPPED, RowState.QUARANTINED, RowState.FAILED, RowState.IN_FLIGHT)
    print("            " + ", ".join(f"{state.replace('_', ' ')} {counts.get(state, 0)}" for state in states), file=out)
    box = quarantine_dir(settings)
    waiting, replayed = _count(box / "new"), _count(box / "cur")
    print(f"quarantine  {box}: {waiting} waiting in new/"
          + (" (after fixing the cause: m2r-deliver replay)" if waiting else "") + f", {replayed} replayed in cur/",
          file=out)
    print(f"in retry    {len(retrying)}" + (" (oldest first)" if retrying else ""), file=out)
    for row in retrying:
        print(f"  {_when(row.first_at)}  {row.attempts} attempt(s)  {row.key}  {_state(row)}", file=out)
    print(f"recent      (newest first, up to {recent})", file=out)
    for row in latest:
        print(f"  {_when(row.last_at)}  {_state(row)}  {row.key}", file=out)
    return EX_OK


def _state(row: Row) -> str:
    if row.state == RowState.FILED:
        return f"filed #{row.issue_id}"
    if row.state == RowState.DROPPED:
        return f"dropped by {row.guard}"
    if row.state == RowState.QUARANTINED:
        return f"quarantined ({row.fault}: {row.error})"
    if row.state == RowState.IN_FLIGHT:
        return f"in flight (pid {row.pid} on {row.host} since {_when(row.started_at)})"
    unknown = ", outcome of an attempt unknown" if row.outcome_unknown else ""
    return f"failed{unknown} ({row.fault}: {row.error})"


def _count(path) -> int:
    try:
        return sum(1 for name in os.listdir(path) if not name.startswith("."))
    except OSError:
        return 0


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d"
