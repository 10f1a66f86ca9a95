"""``m2r-deliver status``: what the ledger holds — counts by outcome, the quarantine,
the mail in retry, the mail to requesters still owed, and the most recent outcomes. For
a person at a terminal (text), a program (``--json``), or a monitoring system
(``--check``: one line, and the exit status says how bad it is, the way Nagios-style
checks do).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any, TextIO

from .config import Settings
from .errors import EX_CHECK_FAILED, EX_OK, StateError
from .ledger import FILE_NAME, Ledger, Row
from .once import _age, longest_attempt, quarantine_dir
from .outgoing.answered import OwedSummary, owed_summary
from .states import RowState
from .valueclass import field, valueclass

STATES = (RowState.FILED, RowState.DROPPED, RowState.QUARANTINED, RowState.FAILED, RowState.IN_FLIGHT)
#: ``status --check`` exit statuses (the monitoring plugins' OK, WARNING, CRITICAL).
CHECK_OK, CHECK_WARNING, CHECK_CRITICAL = 0, 1, 2
#: In-flight rows whose process is asked after, at most.
IN_FLIGHT_SHOWN = 1000
#: ``status --check`` warns about a mail to a requester owed for longer than this (seconds).
OWED_ALARM = 3600


@valueclass
class Snapshot:
    ledger: Path
    keep_for: float
    exists: bool
    counts: dict[str, int] = field(default_factory=dict)
    retrying: list[Row] = field(default_factory=list)
    latest: list[Row] = field(default_factory=list)
    quarantine: Path | None = None
    waiting: int = 0
    replayed: int = 0
    hold: Path | None = None
    held: int = 0
    #: Rows in flight whose process is gone (killed): interrupted, not being delivered.
    gone: frozenset[str] = frozenset()
    #: Mail to requesters (acknowledgements, relayed notes) the mail system has not taken yet
    #: (the table ``owed``).
    owed: OwedSummary = OwedSummary()


def status(settings: Settings, out: TextIO, recent: int = 20, *, as_json: bool = False,
           alarm_after: float | None = None) -> int:
    try:
        snap = snapshot(settings, recent)
    except StateError as exc:
        if alarm_after is not None:
            print(f"CRITICAL: {exc.reason}", file=out)
            return CHECK_CRITICAL
        print(json.dumps({"error": exc.reason}) if as_json else f"FAIL {exc.reason}", file=out)
        return EX_CHECK_FAILED
    if alarm_after is not None:
        level, problems = verdict(snap, alarm_after, time.time())
        name = ("OK", "WARNING", "CRITICAL")[level]
        print(f"{name}: " + ("; ".join(problems) if problems else _summary(snap)), file=out)
        return level
    if as_json:
        print(json.dumps(_as_dict(snap), ensure_ascii=False), file=out)
    else:
        _print(snap, settings, recent, out)
    return EX_OK


def snapshot(settings: Settings, recent: int = 20) -> Snapshot:
    path = settings.state_dir / FILE_NAME
    box, hold = quarantine_dir(settings), settings.guard.hold
    snap = Snapshot(path, settings.keep_for, path.exists(), quarantine=box, waiting=_count(box / "new"),
                    replayed=_count(box / "cur"), hold=hold, held=_count(hold / "new"))
    if snap.exists:
        with Ledger.open(settings.state_dir, keep_for=settings.keep_for,
                         stale_after=longest_attempt(settings)) as ledger:
            snap.counts = ledger.counts()
            snap.retrying = ledger.in_retry(limit=50)
            snap.latest = ledger.recent(limit=recent)
            snap.gone = frozenset(row.key for row in ledger.in_flight(limit=IN_FLIGHT_SHOWN) if not ledger.alive(row))
            snap.owed = owed_summary(ledger.db)
    return snap


def verdict(snap: Snapshot, alarm_after: float, now: float) -> tuple[int, list[str]]:
    """How bad it is: CRITICAL when mail has waited in retry longer than *alarm_after*, or the
    most recent attempt failed; WARNING when mail waits in the quarantine or the hold folder, or an
    acknowledgement or relayed note has been owed for more than OWED_ALARM."""
    critical, warning = [], []
    old = [row for row in snap.retrying if row.state == RowState.FAILED and now - row.first_at > alarm_after]
    if old:
        critical.append(f"{len(old)} mail(s) in retry for more than {_age(alarm_after)} "
                        f"(oldest since {_when(old[0].first_at)}: {old[0].fault}: {old[0].error})")
    if snap.latest and snap.latest[0].state == RowState.FAILED:
        critical.append(f"the last attempt failed ({snap.latest[0].fault}: {snap.latest[0].error})")
    if snap.waiting:
        warning.append(f"{snap.waiting} mail(s) in the quarantine {snap.quarantine}/new "
                       "(fix the cause, then: m2r-deliver replay)")
    if snap.held:
        warning.append(f"{snap.held} mail(s) held in {snap.hold}/new for a person to look at")
    owed = snap.owed
    if owed.oldest_since is not None and now - owed.oldest_since > OWED_ALARM:
        warning.append(f"{owed.count} mail(s) to requesters owed ({_kinds(owed)}), the oldest for "
                       f"{_age(now - owed.oldest_since)} "
                       f"(issue #{owed.oldest_issue}; the mail system does not take them: see the log's fault=)")
    level = CHECK_CRITICAL if critical else CHECK_WARNING if warning else CHECK_OK
    return level, critical + warning


def _summary(snap: Snapshot) -> str:
    if not snap.exists:
        return "nothing delivered yet"
    return (", ".join(f"{state.replace('_', ' ')} {snap.counts.get(state, 0)}" for state in STATES)
            + (f" (of them {len(snap.gone)} interrupted: the process is gone)" if snap.gone else ""))


def _print(snap: Snapshot, settings: Settings, recent: int, out: TextIO) -> None:
    if not snap.exists:
        print(f"ledger      {snap.ledger}: none yet (nothing delivered with this state dir)", file=out)
        return
    print(f"ledger      {snap.ledger}: {sum(snap.counts.values())} mails remembered "
          f"(each for {_days(settings.keep_for)} after its last attempt)", file=out)
    print("            " + _summary(snap), file=out)
    print(f"quarantine  {snap.quarantine}: {snap.waiting} waiting in new/"
          + (" (after fixing the cause: m2r-deliver replay)" if snap.waiting else "")
          + f", {snap.replayed} replayed in cur/", file=out)
    if snap.held:
        print(f"hold        {snap.hold}: {snap.held} waiting in new/ for a person to look at", file=out)
    owed = snap.owed
    oldest = (f" ({_kinds(owed)}), the oldest since {_when(owed.oldest_since)} (issue #{owed.oldest_issue}, "
              f"to {owed.oldest_recipient}; handed over when the mail system takes it, on the mail's retry)")
    print(f"owed        {owed.count} mail(s) to requesters" + (oldest if owed.count else ""), file=out)
    print(f"in retry    {len(snap.retrying)}" + (" (oldest first)" if snap.retrying else ""), file=out)
    for row in snap.retrying:
        print(f"  {_when(row.first_at)}  {row.attempts} attempt(s)  {row.key}  {_state(row, snap.gone)}", file=out)
    print(f"recent      (newest first, up to {recent})", file=out)
    for row in snap.latest:
        print(f"  {_when(row.last_at)}  {_state(row, snap.gone)}  {row.key}", file=out)


def _as_dict(snap: Snapshot) -> dict[str, Any]:
    return {
        "ledger": str(snap.ledger),
        "keep_for": snap.keep_for,
        "counts": {state.value: snap.counts.get(state, 0) for state in STATES},
        "quarantine": {"path": str(snap.quarantine), "waiting": snap.waiting, "replayed": snap.replayed},
        "hold": {"path": str(snap.hold), "waiting": snap.held},
        "owed": {"count": snap.owed.count, "by_kind": dict(snap.owed.by_kind),
                 "oldest_since": snap.owed.oldest_since, "oldest_issue": snap.owed.oldest_issue},
        "in_retry": [_row(row, snap.gone) for row in snap.retrying],
        "recent": [_row(row, snap.gone) for row in snap.latest],
    }


def _row(row: Row, gone: frozenset[str]) -> dict[str, Any]:
    return {"key": row.key, "state": row.state, "attempts": row.attempts, "first_at": row.first_at,
            "last_at": row.last_at, "issue": row.issue_id, "guard": row.guard, "fault": row.fault,
            "error": row.error, "outcome_unknown": row.outcome_unknown, "summary": _state(row, gone)}


def _state(row: Row, gone: frozenset[str] = frozenset()) -> str:
    if row.state == RowState.FILED:
        return f"filed #{row.issue_id}"
    if row.state == RowState.DROPPED:
        return f"dropped by {row.guard}"
    if row.state == RowState.QUARANTINED:
        return f"quarantined ({row.fault}: {row.error})"
    if row.state == RowState.IN_FLIGHT and row.key in gone:
        return (f"interrupted (pid {row.pid} on {row.host}, started {_when(row.started_at)}, is gone; "
                "the next attempt looks in Redmine first)")
    if row.state == RowState.IN_FLIGHT:
        return f"in flight (pid {row.pid} on {row.host} since {_when(row.started_at)})"
    unknown = ", outcome of an attempt unknown" if row.outcome_unknown else ""
    return f"failed{unknown} ({row.fault}: {row.error})"


def _kinds(owed: OwedSummary) -> str:
    return ", ".join(f"{kind} {count}" for kind, count in owed.by_kind)


def _count(path) -> int:
    try:
        return sum(1 for name in os.listdir(path) if not name.startswith("."))
    except OSError:
        return 0


def _when(stamp: float | None) -> str:
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(stamp)) if stamp else "-"


def _days(seconds: float) -> str:
    return f"{seconds / 86400:g}d"

