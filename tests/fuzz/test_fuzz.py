"""Fuzzing: generated and mutated mail through the real entry point (``cli.main``, in
process, its Redmine a closed loopback port). Whatever the bytes: exit 0 or 75, nothing on
stdout or stderr (a dry run prints its plan and nothing else), a ledger row for every
real delivery, each mail within the deadline, each within a bound on the memory it adds.

Profiles (``M2R_FUZZ_PROFILE``): ``fast`` (the default, a few hundred inputs, part of the
normal test run) and ``long`` (50,000 inputs; see docs/fuzzing.md for the command and
its last result). A failure prints the input that caused it; hypothesis keeps it in
``.hypothesis/`` and tries it first next time.
"""

from __future__ import annotations

import io
import json
import os
import re
import resource
import sqlite3
import sys
from contextlib import contextmanager

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from support import mailgen
from support.paths import corpus_dir, console_script
from support.testbed import Site

_SURROGATE = re.compile("[\udc80-\udcff]")
PROFILE = os.environ.get("M2R_FUZZ_PROFILE", "fast")
#: Inputs per test: the long profile's add up to 50,000.
EXAMPLES = {
    "fast": {"structural": 150, "dry": 80, "mutated": 120, "bytes": 60},
    "long": {"structural": 20_000, "dry": 5_000, "mutated": 20_000, "bytes": 5_000},
}[PROFILE]
#: How much one delivery may raise the process's peak resident memory (the generated mails
#: are small; the hard ceiling of a real delivery is entry.MEMORY_LIMIT, in place in the
#: installed-script test).
MEMORY_PER_MAIL = 256 << 20
FUZZ = settings(deadline=20_000, suppress_health_check=list(HealthCheck), derandomize=PROFILE == "fast",
                database=None if PROFILE == "fast" else settings.default.database)


@pytest.fixture(scope="module")
def fuzz_site(tmp_path_factory) -> Site:
    """One closed-port site for all inputs of a module: the ledger grows as a real one does."""
    return Site(tmp_path_factory.mktemp("fuzz"), "http://127.0.0.1:9", "0" * 40)


class _Stdin:
    def __init__(self, data: bytes):
        self.buffer = io.BytesIO(data)


@contextmanager
def _standard_streams(data: bytes):
    saved = sys.stdin, sys.stdout, sys.stderr
    out, err = io.StringIO(), io.StringIO()
    sys.stdin, sys.stdout, sys.stderr = _Stdin(data), out, err
    try:
        yield out, err
    finally:
        sys.stdin, sys.stdout, sys.stderr = saved


def run_entry(site: Site, data: bytes, *args: str) -> tuple[int, str, str]:
    from m2r_deliver.cli import main

    with _standard_streams(data) as (out, err):
        status = main(["--config", str(site.config_path), *args], {"HOME": str(site.home)})
    return status, out.getvalue(), err.getvalue()


def ledger_row(site: Site, data: bytes):
    from m2r_deliver.mailkey import delivery_key
    from m2r_deliver.read import read_message

    key = delivery_key(read_message(io.BytesIO(data)))
    with sqlite3.connect(site.state_dir / "ledger.sqlite3") as db:
        return db.execute("SELECT state, fault FROM deliveries WHERE key = ?", (key,)).fetchone()


def _peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def deliver_and_check(site: Site, data: bytes) -> None:
    start = site.log_file.stat().st_size if site.log_file.exists() else 0
    peak = _peak()
    status, out, err = run_entry(site, data)
    assert status in (0, 75) and out == "" and err == "", (status, out, err[-2000:], data[:300])
    row = ledger_row(site, data)
    assert row is not None, f"no ledger row for {data[:300]!r}"
    with open(site.log_file, "rb") as log:  # this delivery's line, read as UTF-8 strictly
        log.seek(start)
        line = log.read().decode("utf-8")
    assert line.count("\n") == 1, line
    assert row[1] != "ours", (row, line, data[:300])
    assert _peak() - peak < MEMORY_PER_MAIL, data[:300]


@settings(FUZZ, max_examples=EXAMPLES["structural"])
@given(data=mailgen.mails())
def test_generated_mail_is_delivered_or_kept(fuzz_site, data):
    deliver_and_check(fuzz_site, data)


@settings(FUZZ, max_examples=EXAMPLES["dry"])
@given(data=mailgen.mails())
def test_generated_mail_dry_run_prints_only_its_plan(fuzz_site, data):
    status, out, err = run_entry(fuzz_site, data, "--dry-run")
    assert status in (0, 75) and err == "", (status, err[-2000:], data[:300])
    if out:
        assert not _SURROGATE.search(json.dumps(json.loads(out), ensure_ascii=False)), out



@settings(FUZZ, max_examples=EXAMPLES["bytes"])
@given(data=st.binary(max_size=2000))
def test_any_bytes_are_delivered_or_kept(fuzz_site, data):
    deliver_and_check(fuzz_site, data)


def test_mutated_real_mail_is_delivered_or_kept(fuzz_site):
    files = mailgen.corpus_mails(corpus_dir())

    @settings(FUZZ, max_examples=EXAMPLES["mutated"])
    @given(data=mailgen.mutated(files))
    def check(data):
        deliver_and_check(fuzz_site, data)

    check()


@settings(FUZZ, max_examples=max(EXAMPLES["structural"] // 10, 15))
@given(data=mailgen.mails())
def test_generated_mail_through_the_installed_script(fuzz_site, data):
    """The console script as a mail system runs it (its own process: the SIGTERM handler
    and the memory ceiling of entry.py in place)."""
    import subprocess

    proc = subprocess.run([console_script(), "--config", str(fuzz_site.config_path)], input=data,
                          capture_output=True, timeout=60, env={**os.environ, "HOME": str(fuzz_site.home)})
    assert proc.returncode in (0, 75) and proc.stdout == b"" and proc.stderr == b"", (proc, data[:300])
    assert ledger_row(fuzz_site, data) is not None
