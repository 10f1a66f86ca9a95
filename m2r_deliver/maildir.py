"""Maildir delivery, the safe way: write into tmp/, fsync, rename into new/.

Used wherever a mail must be kept outside Redmine (quarantine, held and dropped mail):
a reader never sees half a file, and a crash leaves at most a stray file in tmp/.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

from .config import Settings
from .errors import StateError
from .mail import Mail
from .plan import Outcome, Plan
from .read import Received
from .states import Action, Decision


def ensure_maildir(path: Path) -> Path:
    try:
        for sub in ("tmp", "new", "cur"):
            (path / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise StateError(f"cannot create Maildir {path}: {exc.strerror}") from None
    return path


def deliver_to_maildir(path: Path, data: bytes | Received) -> Path:
    """Store *data* byte for byte as a new message in the Maildir at *path*: bytes, or a
    mail exactly as it was received (read back a slice at a time: a big mail is never
    held whole for this)."""
    pieces = [data] if isinstance(data, bytes) else data.chunks(0)
    ensure_maildir(path)
    name = f"{time.time_ns()}.P{os.getpid()}R{os.urandom(4).hex()}.{socket.gethostname().replace('/', '_')}"
    tmp = path / "tmp" / name
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            for piece in pieces:
                view = memoryview(piece)
                while view:
                    view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        final = path / "new" / name
        os.rename(tmp, final)
        _fsync_dir(path / "new")
    except OSError as exc:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise StateError(f"cannot store the mail in Maildir {path}: {exc.strerror}") from None
    return final


def keep_stopped(plan: Plan, mail: Mail, settings: Settings, *, dry_run: bool = False) -> Outcome:
    """A mail stopped before filing, kept byte for byte as received: held mail always in
    the hold Maildir, dropped mail in keep_dropped when set. A failed write is a
    StateError (the mail system keeps the mail), never a lost mail."""
    holding = plan.action == Action.HOLD
    folder = settings.guard.hold if holding else settings.guard.keep_dropped
    if dry_run:
        return Outcome(Decision.PLANNED)
    saved = deliver_to_maildir(folder, mail.received) if folder else None
    return Outcome(Decision.HELD if holding else Decision.DROPPED, saved=saved)


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
