"""Answered: who was sent an automatic answer, when, and for which mail — so that a
requester gets at most one per period (RFC 3834 section 2) — and which answers are still
owed for mail already filed (``OwedLog``).

One table each in an SQLite database the caller opens (the delivery ledger's file, or one of
its own) in autocommit mode (``isolation_level=None``). Each decision is one
``BEGIN IMMEDIATE`` transaction, so two processes answering the same requester at once
are serialised and only one of them sends. The same mail answered again (a retry after
the hand-over failed, a repeated delivery) is no second answer: it passes, and its mail
carries the same Message-ID.
"""

from __future__ import annotations

import sqlite3
import time
from contextlib import contextmanager
from typing import Iterator

from ..errors import StateError
from ..valueclass import valueclass

SCHEMA = ("CREATE TABLE IF NOT EXISTS answered (recipient TEXT NOT NULL, kind TEXT NOT NULL, "
          "answers TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (recipient, kind, answers))")


@valueclass(frozen=True)
class Earlier:
    """The answer that already went to this recipient within the period."""

    answers: str
    at: float


class AnsweredLog:
    def __init__(self, db: sqlite3.Connection):
        self.db = _with_table(db, SCHEMA, "the answered log")

    def claim(self, recipient: str, kind: str, answers: str, period: float, *, record: bool = True,
              now: float | None = None) -> Earlier | None:
        """None when *recipient* may be sent the *kind* answer to the mail *answers* (then
        it is recorded, when *record*); else the earlier answer within *period* seconds."""
        now = time.time() if now is None else now
        recipient = recipient.lower()
        with _transaction(self.db, "claiming", write=record):
            row = self.db.execute(
                "SELECT answers, at FROM answered WHERE recipient = ? AND kind = ? AND at > ? "
                "ORDER BY (answers = ?) DESC, at DESC LIMIT 1", (recipient, kind, now - period, answers)).fetchone()
            if row and row[0] != answers:
                return Earlier(row[0], row[1])
            if record:
                self.db.execute("DELETE FROM answered WHERE kind = ? AND at <= ?", (kind, now - period))
                self.db.execute("INSERT OR IGNORE INTO answered VALUES (?, ?, ?, ?)", (recipient, kind, answers, now))
            return None

    def release(self, recipient: str, kind: str, answers: str) -> None:
        """Forget a claim whose mail was never handed over, so that another mail may be
        answered in its place."""
        with _transaction(self.db, "releasing", write=True):
            self.db.execute("DELETE FROM answered WHERE recipient = ? AND kind = ? AND answers = ?",
                            (recipient.lower(), kind, answers))


def _with_table(db: sqlite3.Connection, schema: str, what: str) -> sqlite3.Connection:
    """*db*, checked to be in autocommit mode, with the table of *schema* created."""
    if db.isolation_level is not None:
        raise ValueError(f"{what} needs a connection in autocommit mode (isolation_level=None)")
    with _transaction(db, "creating its table", write=False):
        db.execute(schema)
    return db


@contextmanager
def _transaction(db: sqlite3.Connection, doing: str, *, write: bool) -> Iterator[None]:
    """One ``BEGIN IMMEDIATE`` … ``COMMIT`` when *write*, rolled back on any failure;
    SQLite's failures (locked too long, read-only, disk full) become StateError."""
    try:
        if write:
            db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            raise
        if db.in_transaction:
            db.execute("COMMIT")
    except sqlite3.Error as exc:
        raise StateError(f"answered log: {doing}: {exc}") from None


OWED_SCHEMA = ("CREATE TABLE IF NOT EXISTS owed (key TEXT PRIMARY KEY, kind TEXT NOT NULL, issue_id INTEGER NOT NULL, "
               "recipient TEXT NOT NULL, message_id TEXT NOT NULL, message BLOB NOT NULL, since REAL NOT NULL)")


@valueclass(frozen=True)
class Owed:
    """An answer admitted for a filed mail and not handed over yet."""

    #: The delivery key of the mail it answers (the ledger's).
    key: str
    kind: str
    issue_id: int
    #: The requester: the envelope recipient, and whom the once-per record counts.
    recipient: str
    message_id: str
    message: bytes
    #: When it was first owed: the retries give up after [state] retry_for.
    since: float


class OwedLog:
    """Answers owed for mail already filed: written before the ledger records the mail as
    filed, removed once the mail system took the answer (or refused it for good). A retry
    of the filed mail, which the ledger answers as a duplicate, finds its answer here and
    hands it over then — the same bytes, under the same Message-ID."""

    def __init__(self, db: sqlite3.Connection):
        self.db = _with_table(db, OWED_SCHEMA, "the owed log")

    def owe(self, owed: Owed) -> None:
        with _transaction(self.db, "recording an answer owed", write=True):
            self.db.execute("INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?, ?, ?, ?)",
                            (owed.key, owed.kind, owed.issue_id, owed.recipient, owed.message_id, owed.message,
                             owed.since))

    def get(self, key: str) -> Owed | None:
        with _transaction(self.db, "reading", write=False):
            row = self.db.execute("SELECT key, kind, issue_id, recipient, message_id, message, since FROM owed "
                                  "WHERE key = ?", (key,)).fetchone()
        return Owed(row[0], row[1], row[2], row[3], row[4], bytes(row[5]), row[6]) if row else None

    def paid(self, key: str) -> None:
        with _transaction(self.db, "recording an answer handed over", write=True):
            self.db.execute("DELETE FROM owed WHERE key = ?", (key,))


def owe_once(db: sqlite3.Connection, owed: Owed, keep: float, *, now: float | None = None) -> Earlier | None:
    """Owe *owed* and claim its Message-ID in the answered log, in one transaction — unless
    that Message-ID was claimed already (within *keep* seconds): then the earlier claim,
    and nothing is owed. A relayed note's claim: no once-per period, one mail per journal
    whichever notification of it comes first; the claim stays while the mail is owed."""
    now = time.time() if now is None else now
    AnsweredLog(db)
    OwedLog(db)
    with _transaction(db, "claiming a relayed mail", write=True):
        db.execute("DELETE FROM answered WHERE kind = ? AND at <= ?", (owed.kind, now - keep))
        row = db.execute("SELECT answers, at FROM answered WHERE kind = ? AND answers = ?",
                         (owed.kind, owed.message_id)).fetchone()
        if row:
            return Earlier(row[0], row[1])
        db.execute("INSERT INTO answered VALUES (?, ?, ?, ?)",
                   (owed.recipient.lower(), owed.kind, owed.message_id, now))
        db.execute("INSERT OR REPLACE INTO owed VALUES (?, ?, ?, ?, ?, ?, ?)",
                   (owed.key, owed.kind, owed.issue_id, owed.recipient, owed.message_id, owed.message, owed.since))
    return None


@valueclass(frozen=True)
class OwedSummary:
    """What ``status`` shows of the mail still owed: how many (of each kind), and the oldest."""

    count: int = 0
    by_kind: tuple[tuple[str, int], ...] = ()
    oldest_since: float | None = None
    oldest_issue: int | None = None
    oldest_recipient: str | None = None


def owed_summary(db: sqlite3.Connection) -> OwedSummary:
    """The answers still owed, read without writing (no table yet: none owed)."""
    with _transaction(db, "reading the answers owed", write=False):
        if db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'owed'").fetchone() is None:
            return OwedSummary()
        by_kind = tuple(db.execute("SELECT kind, count(*) FROM owed GROUP BY kind ORDER BY kind").fetchall())
        oldest = db.execute("SELECT since, issue_id, recipient FROM owed ORDER BY since LIMIT 1").fetchone()
    return OwedSummary(sum(n for _, n in by_kind), by_kind, *oldest) if oldest else OwedSummary()
