"""Answered: who was sent an automatic answer, when, and for which mail — so that a
requester gets at most one per period (RFC 3834 section 2).

One table in an SQLite database the caller opens (the delivery ledger's file, or one of
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
from dataclasses import dataclass
from typing import Iterator

from ..errors import StateError

SCHEMA = ("CREATE TABLE IF NOT EXISTS answered (recipient TEXT NOT NULL, kind TEXT NOT NULL, "
          "answers TEXT NOT NULL, at REAL NOT NULL, PRIMARY KEY (recipient, kind, answers))")


@dataclass(frozen=True)
class Earlier:
    """The answer that already went to this recipient within the period."""

    answers: str
    at: float


class AnsweredLog:
    def __init__(self, db: sqlite3.Connection):
        if db.isolation_level is not None:
            raise ValueError("the answered log needs a connection in autocommit mode (isolation_level=None)")
        self.db = db
        with _transaction(db, "creating its table", write=False):
            db.execute(SCHEMA)

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
