"""``m2r-deliver replay [MAILDIR]``: once the admin has fixed what made mail fail, deliver
the quarantined mail again, one file at a time, exactly as the mail system would.

What is settled (filed, found already filed, or dropped) moves from ``new/`` to ``cur/``
with the Maildir flags "passed, seen" (``:2,PS``), so the quarantine keeps a copy until
the admin deletes it; what fails again stays in ``new/`` for the next replay. Meant for a
person at a terminal: it prints one line per mail and a summary.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Callable, TextIO

from .config import Settings
from .errors import EX_CHECK_FAILED, EX_OK
from .once import quarantine_dir
from .pipeline import Run, deliver_one
from .read import Received, read_message
from .states import Decision

REPLAYED_FLAGS = ":2,PS"


def replay(settings: Settings, maildir: Path | None, out: TextIO) -> int:
    box = maildir or quarantine_dir(settings)
    new = box / "new"
    try:
        names = sorted(name for name in os.listdir(new) if not name.startswith("."))
    except OSError as exc:
        print(f"FAIL {box}: not a readable Maildir ({exc.strerror})", file=out)
        return EX_CHECK_FAILED
    settled: dict[Decision, int] = {}
    left = 0
    for name in names:
        path = new / name
        result = deliver_one(_reader(path), io.StringIO(), io.StringIO(),
                             settings, Run(replay=True, verbose=False))
        outcome = result.outcome
        if result.status == EX_OK and outcome is not None:
            moved = _mark_replayed(path, box)
            settled[outcome.decision] = settled.get(outcome.decision, 0) + 1
            issue = f" #{outcome.issue_id}" if outcome.issue_id else ""
            print(f"{outcome.decision}{issue}: {name}" + ("" if moved else " (already moved by another replay)"),
                  file=out)
        else:
            left += 1
            failure = result.failure
            print(f"left: {name}: {failure.fault}: {failure.reason}" if failure else f"left: {name}", file=out)
    done = ", ".join(f"{count} {decision}" for decision, count in sorted(settled.items())) or "none settled"
    print(f"replayed {len(names)} from {new}: {done}; {left} left in new/", file=out)
    return EX_OK if left == 0 else EX_CHECK_FAILED


def _mark_replayed(path: Path, box: Path) -> bool:
    target = box / "cur" / (path.name.split(":", 1)[0] + REPLAYED_FLAGS)
    try:
        target.parent.mkdir(mode=0o700, exist_ok=True)
        os.rename(path, target)
    except FileNotFoundError:
        return False
    return True


def _reader(path: Path) -> Callable[[], Received]:
    def read() -> Received:
        with path.open("rb") as mail:  # a big mail is spooled, not read whole
            return read_message(mail)

    return read
