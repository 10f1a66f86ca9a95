"""The ledger and the delivery key, without Redmine: claims, concurrency, stale attempts,
damage, and which deliveries count as the same mail."""

import os
import sqlite3
import subprocess
import sys

import pytest

from m2r_deliver.errors import LedgerDamaged, OutcomeUnknown, RedmineRefused, StateError
from m2r_deliver.mailkey import delivery_key
from m2r_deliver.ledger import FILE_NAME, Ledger
from m2r_deliver.states import RowState
from m2r_deliver.read import Received, read_message
from support.mails import make_mail


def open_ledger(tmp_path, **kw):
    return Ledger.open(tmp_path / "state", keep_for=kw.get("keep_for", 86400), stale_after=kw.get("stale", 300))


def received(data: bytes) -> Received:
    import io
    return read_message(io.BytesIO(data))


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the delivery key ------------------------------------------------------------------

def test_key_is_the_message_id():
    assert delivery_key(received(make_mail(msgid="abcdef123@example.org"))) == "<abcdef123@example.org>"


@pytest.mark.parametrize("msgid", [None, "<1@localhost>", "<no-at-sign-here>", f"<{'x' * 300}@example.org>"])
def test_missing_or_weak_message_id_gives_a_digest(msgid):
    data = b"From: a@example.org\r\nSubject: hi\r\n" + (f"Message-ID: {msgid}\r\n".encode() if msgid else b"")
    key = delivery_key(received(data + b"\r\nbody\r\n"))
    assert key.startswith("sha256:") and len(key) == len("sha256:") + 64


def test_digest_ignores_what_the_mail_system_adds():
    """Two paths to the same mailbox: different trace headers, mbox line and line ends."""
    core = b"From: a@example.org\nTo: help@example.org\nSubject: printer\nDate: Fri, 27 Nov 2026 10:00:00 +0000\n"
    body = b"\nThe printer is jammed.\n"
    via_a = (b"From a@example.org Fri Nov 27 10:00:01 2026\nReceived: from mx1\nDelivered-To: help@example.org\n"
             + core + body)
    via_b = (b"Return-Path: <a@example.org>\r\nReceived: from mx2\r\nReceived: from relay\r\n"
             + core.replace(b"\n", b"\r\n") + body.replace(b"\n", b"\r\n") + b"\r\n")
    assert delivery_key(received(via_a)) == delivery_key(received(via_b))
    other = core + b"\nThe printer is on fire.\n"
    assert delivery_key(received(other)) != delivery_key(received(via_a))


# -- claims ------------------------------------------------------------------------------

def test_first_claim_goes_then_a_settled_mail_is_settled(tmp_path):
    with open_ledger(tmp_path) as ledger:
        claim = ledger.claim("<a@x>")
        assert claim.verdict == "go" and claim.row.state == RowState.IN_FLIGHT and claim.row.attempts == 1
        ledger.settle("<a@x>", RowState.FILED, issue_id=42)
        again = ledger.claim("<a@x>")
        assert again.verdict == "settled" and again.row.issue_id == 42
    assert oct((tmp_path / "state" / FILE_NAME).stat().st_mode & 0o777) == "0o600"


def test_a_live_attempt_makes_others_wait(tmp_path):
    with open_ledger(tmp_path) as first, open_ledger(tmp_path) as second:
        assert first.claim("<a@x>").verdict == "go"
        assert second.claim("<a@x>").verdict == "busy"  # this very process holds it: alive


def test_an_attempt_whose_process_is_gone_leaves_the_outcome_unknown(tmp_path):
    with open_ledger(tmp_path) as ledger:
        started = ledger.claim("<a@x>").row.started_at
        ledger.db.execute("UPDATE deliveries SET pid = ?", (dead_pid(),))
        claim = ledger.claim("<a@x>")
    assert claim.verdict == "go" and claim.row.attempts == 2
    assert claim.row.unsure_since == started and claim.row.outcome_unknown


def test_an_attempt_from_before_this_hosts_boot_is_dead_even_when_its_pid_lives(tmp_path):
    """After a reboot the pid an attempt recorded may belong to another process: a claim
    started before the boot is over, whatever that pid is now."""
    from m2r_deliver.ledger import boot_time

    booted = boot_time()
    if booted is None:
        pytest.skip("this system tells no boot time (/proc/stat btime)")
    with open_ledger(tmp_path, stale=10 ** 9) as ledger:  # not stale by age, however long ago the boot
        ledger.claim("<a@x>")  # pid: this very process, alive
        ledger.db.execute("UPDATE deliveries SET started_at = ?", (booted - 10,))
        claim = ledger.claim("<a@x>")
    assert claim.verdict == "go" and claim.row.outcome_unknown


def test_an_attempt_older_than_any_run_is_stale_even_on_another_host(tmp_path):
    with open_ledger(tmp_path, stale=60) as ledger:
        ledger.claim("<a@x>")
        ledger.db.execute("UPDATE deliveries SET host = 'elsewhere', started_at = started_at - 30")
        assert ledger.claim("<a@x>").verdict == "busy"
        ledger.db.execute("UPDATE deliveries SET started_at = started_at - 3600")
        assert ledger.claim("<a@x>").verdict == "go"


def test_failures_count_refusals_not_temporary_ones(tmp_path):
    with open_ledger(tmp_path) as ledger:
        ledger.claim("<a@x>")
        row = ledger.fail("<a@x>", OutcomeUnknown("reset"), unsure_since=123.0)
        assert row.refusals == 0 and row.unsure_since == 123.0 and row.fault == "redmine"
        ledger.claim("<a@x>")
        row = ledger.fail("<a@x>", RedmineRefused("422 Subject cannot be blank", status=422), unsure_since=None)
        assert row.refusals == 1 and row.attempts == 2 and row.unsure_since is None


def test_old_rows_are_forgotten_when_new_mail_comes(tmp_path):
    with open_ledger(tmp_path, keep_for=100) as ledger:
        ledger.claim("<old@x>")
        ledger.settle("<old@x>", RowState.FILED, issue_id=1)
        ledger.db.execute("UPDATE deliveries SET last_at = last_at - 1000")
        ledger.claim("<new@x>")
        assert ledger.get("<old@x>") is None and ledger.get("<new@x>") is not None


def test_claims_from_many_processes_yield_one_winner(tmp_path):
    script = (
        "import sys; from pathlib import Path; from m2r_deliver.ledger import Ledger\n"
        "l = Ledger.open(Path(sys.argv[1]), keep_for=86400, stale_after=300)\n"
        "print(l.claim('<same@x>').verdict)\n"
        "import time; time.sleep(2)\n"
    )
    procs = [subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "state")], stdout=subprocess.PIPE,
                              text=True) for _ in range(8)]
    verdicts = sorted(p.communicate(timeout=120)[0].strip() for p in procs)
    assert verdicts == ["busy"] * 7 + ["go"]


# -- a ledger that cannot be used --------------------------------------------------------

def test_garbage_in_the_ledger_file_is_damage(tmp_path):
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / FILE_NAME).write_bytes(b"this is not an SQLite database, it is junk " * 100)
    with pytest.raises(LedgerDamaged) as info:
        open_ledger(tmp_path)
    assert FILE_NAME in info.value.reason


def test_a_file_where_the_state_dir_should_be(tmp_path):
    (tmp_path / "state").write_text("in the way")
    with pytest.raises(StateError) as info:
        open_ledger(tmp_path)
    assert not isinstance(info.value, LedgerDamaged)


def test_a_locked_ledger_is_a_state_error_not_a_hang(tmp_path, monkeypatch):
    monkeypatch.setattr("m2r_deliver.ledger.LOCK_WAIT", 0.2)
    with open_ledger(tmp_path) as ledger:
        ledger.claim("<a@x>")
    blocker = sqlite3.connect(tmp_path / "state" / FILE_NAME, isolation_level=None)
    blocker.execute("BEGIN IMMEDIATE")
    try:
        with open_ledger(tmp_path) as ledger, pytest.raises(StateError) as info:
            ledger.claim("<b@x>")
        assert "locked" in info.value.reason
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert os.path.exists(tmp_path / "state" / FILE_NAME)
