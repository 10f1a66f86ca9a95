"""The per-sender circuit breaker: at most [guard] rate_limit mails from one sender are
filed within rate_window seconds; the next is held in a Maildir for a person to look at,
never dropped. A loop that slipped past every other guard stops here.

State: <state dir>/ratelimit.sqlite, one row per admitted mail and sender, pruned to the
window. Each decision is one ``BEGIN IMMEDIATE`` transaction, so concurrent deliveries
count right. A retry of a mail already admitted (Redmine was down) is not counted twice.
"""

from __future__ import annotations

import hashlib
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ..config import Settings
from ..errors import StateError
from ..mail import Mail

if TYPE_CHECKING:
    import sqlite3

STATE_FILE = "ratelimit.sqlite"
_SCHEMA = ("CREATE TABLE IF NOT EXISTS admitted (sender TEXT NOT NULL, message TEXT NOT NULL, at REAL NOT NULL, "
           "PRIMARY KEY (sender, message))")


class RateLimit:
    name = "rate_limit"
    description = "more than [guard] rate_limit mails from one sender within rate_window seconds: held, not dropped"
    trust_overrides = True

    def admit(self, mail: Mail, settings: Settings, *, record: bool = True) -> str | None:
        """None when the mail may be filed (counted, when *record*); else why it is held.
        Without *record* (a dry run) nothing is written."""
        if not settings.guard.rate_limit:
            return None
        import sqlite3  # only mail that passed every guard pays for it

        sender = (mail.sender.addr if mail.sender else None) or mail.envelope_sender or ""
        message = mail.message_id or hashlib.sha256(mail.received.message).hexdigest()
        path = settings.state_dir / STATE_FILE
        try:
            db = _open(path, settings.timeout, writable=record)
            if db is None:
                return None
            try:
                return _count(db, sender, message, settings, record=record)
            finally:
                db.close()  # an uncommitted transaction is rolled back
        except sqlite3.Error as exc:
            raise StateError(f"rate-limit state {path}: {exc}") from None


def _count(db: sqlite3.Connection, sender: str, message: str, settings: Settings, *, record: bool) -> str | None:
    limit, window = settings.guard.rate_limit, settings.guard.rate_window
    now = time.time()
    if record:
        db.execute("BEGIN IMMEDIATE")
    count, seen = db.execute(
        "SELECT count(*), coalesce(max(message = ?), 0) FROM admitted WHERE sender = ? AND at > ?",
        (message, sender, now - window)).fetchone()
    if seen:
        return None
    if count >= limit:
        return f"{count} mails from {sender or '(no sender)'} within {window:g} s (rate_limit = {limit})"
    if record:
        db.execute("DELETE FROM admitted WHERE at <= ?", (now - window,))
        db.execute("INSERT OR REPLACE INTO admitted VALUES (?, ?, ?)", (sender, message, now))
        db.execute("COMMIT")
    return None


def _open(path: Path, timeout: float, *, writable: bool) -> sqlite3.Connection | None:
    """The state database; None on a dry run before any state exists."""
    import sqlite3

    if not writable:
        if not path.exists():
            return None
        return sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=timeout, isolation_level=None)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create the state dir {path.parent}: {exc.strerror}") from None
    db = sqlite3.connect(path, timeout=timeout, isolation_level=None)
    db.execute(_SCHEMA)
    return db
