"""Ledger: one SQLite file in the state dir remembering every mail by its delivery key —
whether it is being delivered, was filed (as which issue), dropped (by which guard),
failed (how, how often), or quarantined — and, for the rate limit, which mail of each
sender was admitted for filing lately. One file, opened once per mail.

SQLite in WAL mode: readers never block the writer, and many ``m2r-deliver`` processes
share it safely. Each change is one short ``BEGIN IMMEDIATE`` transaction, so two
processes claiming the same key are serialised and exactly one of them wins.

One sync to disk per mail: the claim. It must survive a power cut before the request it
guards is sent, so it commits with ``synchronous=FULL``. Every later change commits with
``synchronous=NORMAL``: it survives the process (a crash, a kill), and a power cut can
only lose a record written after the mail system was already answered; the claim that
stays behind says "in flight, outcome unknown", so a redelivery looks in Redmine before
filing.

Before the rate limit moved in (schema version 2), it kept its own file,
``ratelimit.sqlite``: the upgrade reads that file's rows once and removes it, so a loop
that was being counted at the upgrade is still stopped.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from .errors import DeliveryError, LedgerDamaged, StateError
from .states import ClaimVerdict, RowState
from .valueclass import valueclass

FILE_NAME = "ledger.sqlite3"
#: The rate limit's file before schema version 2.
OLD_RATE_LIMIT_FILE = "ratelimit.sqlite"
SCHEMA_VERSION = 2
#: SQLite's primary result codes for a file that is not (any more) a database.
_DAMAGED = {11, 26}  # SQLITE_CORRUPT, SQLITE_NOTADB
#: Their messages: Python 3.10's sqlite3 errors carry no code.
_DAMAGED_MESSAGES = {"database disk image is malformed", "file is not a database"}
#: Seconds a process waits for another one's write transaction before giving up (75).
LOCK_WAIT = 20.0

#: The states of a row that end its delivery.
SETTLED_STATES = (RowState.FILED, RowState.DROPPED, RowState.QUARANTINED)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    key          TEXT PRIMARY KEY,  -- mailkey.delivery_key: <Message-ID> or sha256:…
    state        TEXT NOT NULL,     -- in_flight, filed, dropped, failed, quarantined
    attempts     INTEGER NOT NULL,  -- attempts started
    refusals     INTEGER NOT NULL,  -- permanent failures (the mail's fault) since the last replay
    first_at     REAL NOT NULL,     -- the first attempt began (retry_for counts from here)
    last_at      REAL NOT NULL,     -- the row last changed
    unsure_since REAL,              -- an attempt begun then may have filed the mail: look before filing
    pid          INTEGER,           -- the attempt in flight: process, host and start
    host         TEXT,
    started_at   REAL,
    issue_id     INTEGER,           -- filed as this issue
    guard        TEXT,              -- dropped by this guard
    fault        TEXT,              -- the last failure: whose fault, and why
    error        TEXT,
    quarantine   TEXT               -- the file in the quarantine Maildir
);
CREATE INDEX IF NOT EXISTS deliveries_last_at ON deliveries (last_at);
CREATE INDEX IF NOT EXISTS deliveries_issue ON deliveries (issue_id);
CREATE TABLE IF NOT EXISTS admitted (   -- the rate limit: mail admitted for filing, per sender
    sender  TEXT NOT NULL,
    message TEXT NOT NULL,              -- its Message-ID, or its delivery key
    at      REAL NOT NULL,
    PRIMARY KEY (sender, message)
);
"""


@valueclass(frozen=True, eq=False)
class Row:
    """One mail as the ledger remembers it."""

    key: str
    state: str
    attempts: int
    refusals: int
    first_at: float
    last_at: float
    unsure_since: float | None
    pid: int | None
    host: str | None
    started_at: float | None
    issue_id: int | None
    guard: str | None
    fault: str | None
    error: str | None
    quarantine: str | None

    @property
    def outcome_unknown(self) -> bool:
        return self.unsure_since is not None and self.state not in SETTLED_STATES


@valueclass(frozen=True, eq=False)
class Claim:
    """The answer to "may this process deliver the mail now?"."""

    verdict: ClaimVerdict
    row: Row


class Ledger:
    """The ledger of one state dir. *keep_for*: seconds a mail is remembered after its last
    attempt; *stale_after*: seconds after which an attempt in flight cannot be running."""

    def __init__(self, path: Path, db: sqlite3.Connection, keep_for: float, stale_after: float):
        self.path, self.db = path, db
        self.keep_for, self.stale_after = keep_for, stale_after
        self.host, self.pid = socket.gethostname(), os.getpid()

    @classmethod
    def open(cls, state_dir: Path, *, keep_for: float, stale_after: float) -> "Ledger":
        """Open (creating if needed) the ledger; StateError when it cannot be written,
        LedgerDamaged when the file is not a database."""
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        except OSError as exc:
            raise StateError(f"cannot create the state dir {state_dir}: {exc.strerror}") from None
        path = state_dir / FILE_NAME
        if not os.path.lexists(path):
            _create(path)
        try:
            os.close(os.open(path, os.O_RDWR))
        except OSError as exc:
            raise StateError(f"cannot write the ledger {path}: {exc.strerror}") from None
        _check_header(path)
        with _translated(path, "opening"):
            db = sqlite3.connect(path, timeout=LOCK_WAIT, isolation_level=None)
            try:
                if db.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    db.execute("PRAGMA journal_mode=WAL")
                db.execute("PRAGMA synchronous=NORMAL")
                version = db.execute("PRAGMA user_version").fetchone()[0]
                if not version:  # every ledger is made with its schema (see _create)
                    raise LedgerDamaged(f"ledger {path} is damaged (it has no schema)", path=path)
                if version != SCHEMA_VERSION:
                    _upgrade(db, state_dir / OLD_RATE_LIMIT_FILE)
            except BaseException:
                db.close()
                raise
        return cls(path, db, keep_for, stale_after)

    @classmethod
    def read_only(cls, state_dir: Path) -> "Ledger | None":
        """The ledger for looking only (a dry run); None when there is none of this
        version yet. Nothing is created or written."""
        path = state_dir / FILE_NAME
        if not path.exists():
            return None
        with _translated(path, "opening"):
            db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True, timeout=LOCK_WAIT,
                                 isolation_level=None)
            if db.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
                db.close()
                return None
        return cls(path, db, 0, 0)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> "Ledger":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- the transitions a delivery goes through -------------------------------------

    def claim(self, key: str, *, replay: bool = False) -> Claim:
        """Take the mail for this process unless it is settled or another live process has
        it. A row left in flight by a process that is gone (killed) makes the outcome of
        that attempt unknown. A new mail makes room: rows older than keep_for go."""
        now = time.time()
        with _translated(self.path, "reading"):  # a duplicate needs no write, and no sync
            row = self._row(key)
        if row is not None and row.state in SETTLED_STATES and not (replay and row.state == RowState.QUARANTINED):
            return Claim(ClaimVerdict.SETTLED, row)
        with self._write("claiming", durable=True):
            row = self._row(key)
            if row is None:
                self.db.execute("DELETE FROM deliveries WHERE last_at < ? AND state != ?",
                                (now - self.keep_for, RowState.IN_FLIGHT))
                self.db.execute(
                    "INSERT INTO deliveries (key, state, attempts, refusals, first_at, last_at, pid, host, started_at)"
                    " VALUES (?, ?, 1, 0, ?, ?, ?, ?, ?)",
                    (key, RowState.IN_FLIGHT, now, now, self.pid, self.host, now))
                return Claim(ClaimVerdict.GO, self._written(key))
            if row.state in SETTLED_STATES and not (replay and row.state == RowState.QUARANTINED):
                return Claim(ClaimVerdict.SETTLED, row)
            if row.state == RowState.IN_FLIGHT and self._alive(row, now):
                return Claim(ClaimVerdict.BUSY, row)
            unsure = row.unsure_since
            if row.state == RowState.IN_FLIGHT:  # its process is gone: whatever it sent may have been filed
                unsure = min(filter(None, (unsure, row.started_at)), default=now)
            self.db.execute(
                "UPDATE deliveries SET state = ?, attempts = attempts + 1, refusals = ?, last_at = ?,"
                " unsure_since = ?, pid = ?, host = ?, started_at = ? WHERE key = ?",
                (RowState.IN_FLIGHT, 0 if replay else row.refusals, now, unsure, self.pid, self.host, now, key))
            return Claim(ClaimVerdict.GO, self._written(key))

    def settle(self, key: str, state: RowState, *, issue_id: int | None = None, guard: str | None = None,
               quarantine: str | None = None) -> None:
        """Record a final outcome: filed as *issue_id*, dropped by *guard*, or quarantined
        (which keeps an unknown outcome unknown, for the replay to look first)."""
        with self._write("recording the outcome"):
            self.db.execute(
                "UPDATE deliveries SET state = ?, last_at = ?, pid = NULL, host = NULL, started_at = NULL,"
                " unsure_since = CASE WHEN ? = ? THEN unsure_since END,"
                " issue_id = coalesce(?, issue_id), guard = ?, quarantine = coalesce(?, quarantine) WHERE key = ?",
                (state, time.time(), state, RowState.QUARANTINED, issue_id, guard, quarantine, key))

    def fail(self, key: str, failure: DeliveryError, *, unsure_since: float | None,
             state: RowState = RowState.FAILED) -> Row:
        """Record a failed attempt; returns the row, for the caller's retry decision."""
        with self._write("recording the failure"):
            self.db.execute(
                "UPDATE deliveries SET state = ?, last_at = ?, refusals = refusals + ?, unsure_since = ?,"
                " pid = NULL, host = NULL, started_at = NULL, fault = ?, error = ? WHERE key = ?",
                (state, time.time(), 0 if failure.temporary else 1, unsure_since, failure.fault,
                 storable(failure.reason), key))
            return self._written(key)

    def admit(self, sender: str, message: str, *, limit: int, window: float, record: bool = True) -> int | None:
        """The rate limit's count. None when *message* from *sender* may be filed: it was
        admitted before (a retry), or fewer than *limit* were within *window* seconds —
        then it is admitted now, unless *record* is false. Otherwise how many were."""
        now = time.time()
        with self._write("counting the sender's mail") if record else _translated(self.path, "reading"):
            count, seen = self.db.execute(
                "SELECT count(*), coalesce(max(message = ?), 0) FROM admitted WHERE sender = ? AND at > ?",
                (message, sender, now - window)).fetchone()
            if seen:
                return None
            if count >= limit:
                return count
            if record:
                self.db.execute("DELETE FROM admitted WHERE at <= ?", (now - window,))
                self.db.execute("INSERT OR REPLACE INTO admitted VALUES (?, ?, ?)", (sender, message, now))
            return None

    # -- questions ----------------------------------------------------------------------

    def get(self, key: str) -> Row | None:
        with _translated(self.path, "reading"):
            return self._row(key)

    def issues_of_other_mail(self, key: str, since: float) -> frozenset[int]:
        """Issues this ledger knows were filed for other mail since *since*: a search by
        content must not mistake them for this mail's."""
        with _translated(self.path, "reading"):
            rows = self.db.execute("SELECT issue_id FROM deliveries WHERE issue_id IS NOT NULL AND key != ?"
                                   " AND last_at >= ?", (key, since))
            return frozenset(issue for (issue,) in rows)

    def counts(self) -> dict[str, int]:
        with _translated(self.path, "reading"):
            return dict(self.db.execute("SELECT state, count(*) FROM deliveries GROUP BY state").fetchall())

    def recent(self, limit: int) -> list[Row]:
        return self._rows("1", "last_at DESC", limit)

    def in_retry(self, limit: int) -> list[Row]:
        """Mail not settled yet, oldest first."""
        return self._rows(f"state IN ('{RowState.FAILED}', '{RowState.IN_FLIGHT}')", "first_at", limit)

    def in_flight(self, limit: int) -> list[Row]:
        return self._rows(f"state = '{RowState.IN_FLIGHT}'", "first_at", limit)

    def alive(self, row: Row) -> bool:
        """Whether the process that claimed *row* may still be delivering it."""
        return self._alive(row, time.time())

    # -- plumbing -------------------------------------------------------------------------

    def _rows(self, where: str, order: str, limit: int) -> list[Row]:
        with _translated(self.path, "reading"):
            cursor = self.db.execute(f"SELECT * FROM deliveries WHERE {where} ORDER BY {order} LIMIT ?", (limit,))
            return [Row(*values) for values in cursor]

    def _row(self, key: str) -> Row | None:
        values = self.db.execute("SELECT * FROM deliveries WHERE key = ?", (key,)).fetchone()
        return Row(*values) if values else None

    def _written(self, key: str) -> Row:
        """The row this transaction has just written."""
        row = self._row(key)
        if row is None:
            raise StateError(f"the ledger {self.path} lost the row it was writing")
        return row

    def _alive(self, row: Row, now: float) -> bool:
        """Whether the attempt in flight may still be running. On this host the process
        is asked, unless the attempt began before the host's last boot (its pid may be
        another process's now); elsewhere only its age can tell."""
        if row.started_at is None or row.pid is None or now - row.started_at > self.stale_after:
            return False
        if row.host != self.host:
            return True
        booted = boot_time()
        if booted is not None and row.started_at < booted:
            return False
        try:
            os.kill(row.pid, 0)
        except ProcessLookupError:
            return False
        except OSError:
            return True  # exists, owned by someone else
        return True

    @contextmanager
    def _write(self, doing: str = "writing", *, durable: bool = False) -> Iterator[None]:
        """One ``BEGIN IMMEDIATE`` … ``COMMIT`` transaction: writers queue here. A
        *durable* one is on disk when it returns (and so is everything before it)."""
        with _translated(self.path, doing):
            if durable:
                self.db.execute("PRAGMA synchronous=FULL")
            try:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    yield
                except BaseException:
                    if self.db.in_transaction:
                        self.db.execute("ROLLBACK")
                    raise
                self.db.execute("COMMIT")
            finally:
                if durable:
                    self.db.execute("PRAGMA synchronous=NORMAL")


def _upgrade(db: sqlite3.Connection, old_rate_limit: Path) -> None:
    """Create or complete the schema; carry over the rows of the rate limit's old file,
    then remove it. An old file that cannot be read is left where it is (the rate limit
    starts counting afresh). Safe to run by several processes at once."""
    carry = ""
    if old_rate_limit.exists():
        try:
            db.execute("ATTACH DATABASE ? AS old", (str(old_rate_limit),))
            db.execute("SELECT sender, message, at FROM old.admitted LIMIT 1").fetchall()
            carry = "INSERT OR IGNORE INTO main.admitted SELECT sender, message, at FROM old.admitted;"
        except sqlite3.Error:
            if any(name == "old" for _, name, _ in db.execute("PRAGMA database_list")):
                db.execute("DETACH DATABASE old")
    db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA}; {carry} PRAGMA user_version={SCHEMA_VERSION}; COMMIT;")
    if carry:
        db.execute("DETACH DATABASE old")
        for suffix in ("", "-journal", "-wal", "-shm"):
            try:
                os.unlink(f"{old_rate_limit}{suffix}")
            except OSError:
                pass


def _create(path: Path) -> None:
    """A new ledger, complete with its schema, appears under *path* in one step (made
    aside, then linked into place), so that an empty or half-made file is never a new
    ledger but always damage: a ledger that lost its content must not pass for a new one."""
    fresh = path.with_name(f".{path.name}.{os.getpid()}.new")
    try:
        with _translated(path, "creating"):
            # created private: it names every mail (SQLite gives -wal and -shm the same mode)
            os.close(os.open(fresh, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600))
            db = sqlite3.connect(fresh, isolation_level=None)
            try:
                db.execute("PRAGMA journal_mode=WAL")
                _upgrade(db, path.with_name(OLD_RATE_LIMIT_FILE))
            finally:
                db.close()  # the last connection: the WAL is folded in and removed
        try:
            os.link(fresh, path)
        except FileExistsError:  # another process made it first: theirs is the ledger
            pass
    except OSError as exc:
        raise StateError(f"cannot write the ledger {path}: {exc.strerror}") from None
    finally:
        for leftover in (fresh, Path(f"{fresh}-wal"), Path(f"{fresh}-shm")):
            try:
                leftover.unlink()
            except OSError:
                pass


def _check_header(path: Path) -> None:
    """LedgerDamaged unless *path* starts as an SQLite database and is as long as its
    header says (a file cut short, or emptied, is damage, never a new ledger)."""
    try:
        with open(path, "rb") as file:
            header = file.read(100)
            size = os.fstat(file.fileno()).st_size
    except OSError as exc:
        raise StateError(f"cannot read the ledger {path}: {exc.strerror}") from None
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        raise LedgerDamaged(f"ledger {path} is damaged (not an SQLite database: {size} bytes)", path=path)
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and size < pages * page_size:
        raise LedgerDamaged(f"ledger {path} is damaged (cut short: {size} of {pages * page_size} bytes)", path=path)


def storable(text: str) -> str:
    """*text* as SQLite can store it: a reason may quote raw bytes of a mail, which Python
    keeps as lone surrogates that no UTF-8 encoder accepts."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


@contextmanager
def _translated(path: Path, doing: str) -> Iterator[None]:
    """SQLite's exceptions become StateError (cannot read or write: disk full, read-only,
    locked too long) or LedgerDamaged (not a database any more)."""
    try:
        yield
    except sqlite3.Error as exc:
        if _damaged(exc):
            raise LedgerDamaged(f"ledger {path} is damaged ({exc})", path=path) from None
        raise StateError(f"ledger {path}: {doing}: {exc}") from None


def _damaged(exc: sqlite3.Error) -> bool:
    code = getattr(exc, "sqlite_errorcode", None)
    return code & 0xFF in _DAMAGED if code is not None else str(exc) in _DAMAGED_MESSAGES


def boot_time() -> float | None:
    """When this host last booted (Linux's /proc/stat ``btime``), or None where unknown."""
    try:
        with open("/proc/stat", "rb") as stat:
            for line in stat:
                if line.startswith(b"btime "):
                    return float(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None
