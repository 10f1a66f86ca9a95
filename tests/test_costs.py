"""What a path costs, where it can be counted exactly (times are measured in bench/, never
asserted): the SQLite opens and syncs per mail, the modules a dropped mail loads, and
the memory a big mail takes while it is read and parsed."""

from __future__ import annotations

import io
import json
import os
import random
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import tracemalloc

import pytest

from support.faultproxy import FaultProxy
from support.mails import make_mail
from support.paths import console_script
from m2r_deliver.config import load
from m2r_deliver.mail import parse
from m2r_deliver.read import SLICE, read_message
from support.inprocess import delivered

VACATION = {"Auto-Submitted": "auto-replied (vacation)"}


def settings_of(site):
    return load(str(site.config_path), {}, {"HOME": str(site.home)})


class SQLiteSpy:
    """Counts the connections opened and the commits made while ``synchronous=FULL``
    (the ones SQLite syncs to disk before it returns)."""

    def __init__(self, monkeypatch):
        self.opened, self.synced, self._full = 0, 0, {}
        real = sqlite3.connect

        def connect(*args, **kwargs):
            db = real(*args, **kwargs)
            self.opened += 1
            key = id(db)
            self._full[key] = True  # SQLite's default, until a PRAGMA says otherwise
            db.set_trace_callback(lambda statement: self._saw(key, statement))
            return db

        monkeypatch.setattr(sqlite3, "connect", connect)

    def _saw(self, key: int, statement: str) -> None:
        words = statement.upper().replace(" ", "")
        if words.startswith("PRAGMASYNCHRONOUS="):
            self._full[key] = words.endswith(("=FULL", "=2", "=EXTRA", "=3"))
        elif words.startswith(("COMMIT", "END")) and self._full[key]:
            self.synced += 1


def deliver(settings, data: bytes):
    return delivered(settings, data).result


def test_a_dropped_mail_opens_sqlite_once_and_syncs_once(offline_site, monkeypatch):
    settings = settings_of(offline_site)
    deliver(settings, make_mail("warm-up", headers=VACATION))  # the ledger exists, as on any later mail
    spy = SQLiteSpy(monkeypatch)
    result = deliver(settings, make_mail("Out of office", headers=VACATION))
    assert result.outcome.decision == "dropped"
    assert (spy.opened, spy.synced) == (1, 1)


def test_a_mail_to_be_filed_counts_its_sender_in_the_same_connection(offline_site, monkeypatch):
    settings = settings_of(offline_site)
    deliver(settings, make_mail("warm-up", headers=VACATION))
    spy = SQLiteSpy(monkeypatch)
    result = deliver(settings, make_mail("The printer is jammed"))  # Redmine is down: 75
    assert result.status == 75 and result.failure.fault == "redmine"
    assert (spy.opened, spy.synced) == (1, 1)  # claim (synced), rate limit, failure (not synced)


def test_a_duplicate_opens_sqlite_once_and_syncs_nothing(offline_site, monkeypatch):
    settings = settings_of(offline_site)
    mail = make_mail("Out of office", headers=VACATION)
    deliver(settings, mail)
    spy = SQLiteSpy(monkeypatch)
    assert deliver(settings, mail).outcome.decision == "duplicate"
    assert (spy.opened, spy.synced) == (1, 0)


# --- modules ------------------------------------------------------------------------------

#: Loaded only for mail that is filed (or for some mail: HTML, replies, new accounts).
FILING_ONLY = ("requests", "urllib3", "redminelib", "http.client", "html.parser", "m2r_deliver.quotes",
               "m2r_deliver.htmltext", "m2r_deliver.identity", "m2r_deliver.filing", "m2r_deliver.redmine",
               "secrets", "tempfile", "mimetypes", "email.generator", "json")


def imported_modules(site, mail: bytes, *options: str) -> set[str]:
    """Every module the installed program imported while handling *mail* (its command
    line ``--config PATH`` and *options*), as Python's own -X importtime reports it."""
    command = [sys.executable, "-X", "importtime", console_script(), "--config", str(site.config_path), *options]
    proc = subprocess.run(command, input=mail, capture_output=True, timeout=120,
                          env={**os.environ, "HOME": str(site.home)})
    assert proc.returncode == 0, proc.stderr[-2000:]
    return {line.rsplit("|", 1)[1].strip() for line in proc.stderr.decode().splitlines()
            if line.startswith("import time:") and "|" in line}


def test_a_dropped_vacation_reply_loads_nothing_only_filing_needs(offline_site):
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION))
    assert "m2r_deliver.pipeline" in loaded and "sqlite3" in loaded
    assert sorted(m for m in loaded if m in FILING_ONLY or m.split(".")[0] in FILING_ONLY) == []


def test_without_outgoing_mail_a_dropped_mail_never_looks_for_a_bounce_of_ours(offline_site):
    """With no [outgoing] from the program sends nothing, so no bounce can be its own: the
    drop path does not load own_bounce."""
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION))
    assert "m2r_deliver.own_bounce" not in loaded


def test_the_usual_command_line_is_read_without_argparse(offline_site):
    """A mail system's usual command line (``--config PATH``) has no option to parse:
    argparse, its thirty options and gettext are not loaded."""
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION))
    assert sorted(loaded & {"argparse", "gettext", "m2r_deliver.options"}) == []


def test_a_command_line_with_options_is_read_without_shutil(offline_site):
    """argparse sizes help to the terminal through shutil (and its compression modules);
    a delivery reads its options and writes no help."""
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION), "--project", "ops")
    assert "argparse" in loaded and "m2r_deliver.options" in loaded
    assert sorted(loaded & {"shutil", "bz2", "lzma"}) == []


def test_a_dropped_mail_compiles_no_dataclass_machinery(offline_site):
    """The value classes are made without ``dataclasses``, which imports ``inspect`` (with
    ``ast``, ``dis`` and ``tokenize``): about a tenth of what a dropped mail executes."""
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION))
    assert "m2r_deliver.plan" in loaded
    assert sorted(loaded & {"dataclasses", "inspect", "ast", "dis", "tokenize"}) == []


def test_a_dropped_mail_loads_no_logging_machinery(offline_site):
    """Python's logging (about 5 ms with threading and string) is silenced only where a
    library that logs is loaded: flufl.bounce, the HTTP stack."""
    loaded = imported_modules(offline_site, make_mail("Out of office", headers=VACATION))
    assert "logging" not in loaded


# --- the process's end, and its garbage collector -----------------------------------------

WATCHED = """
import atexit, gc, os, sys
out = sys.argv.pop(1)
collections = []

def mark(name, text, out=out, join=os.path.join, write=os.write, open=os.open, flags=os.O_WRONLY | os.O_CREAT):
    write(open(join(out, name), flags, 0o600), text.encode())  # in the tear-down, globals are gone

class TornDown:
    def __del__(self, mark=mark):
        mark("torn-down", "the interpreter tore its modules down")

kept = TornDown()  # freed only when the interpreter clears this module at its end


def exit_handler():
    gc.callbacks.clear()  # the collector would hold this module's globals through its callback
    mark("exit-handlers", repr(collections))


atexit.register(exit_handler)
from m2r_deliver import entry  # compiled here when no .pyc is at hand (PYTHONDONTWRITEBYTECODE)
gc.callbacks.append(lambda phase, info: phase == "start" and collections.append(info["generation"]))
sys.exit(entry.main())
"""


def watched_delivery(site, mail: bytes) -> tuple[int, list[str], list[int] | None]:
    """Deliver *mail* through entry.main as the console script does, watched from inside
    the process: its exit status, the marks left at its end, and the garbage collections
    it ran (by generation) from the moment entry.py was loaded."""
    marks = site.home / "marks"
    shutil.rmtree(marks, ignore_errors=True)
    marks.mkdir()
    command = [sys.executable, "-c", WATCHED, str(marks), "--config", str(site.config_path)]
    proc = subprocess.run(command, input=mail, capture_output=True, timeout=120,
                          env={**os.environ, "HOME": str(site.home)})
    assert (proc.stdout, proc.stderr) == (b"", b""), proc.stderr[-2000:]
    handlers = marks / "exit-handlers"
    collections = json.loads(handlers.read_text()) if handlers.exists() else None  # repr of a list of ints
    return proc.returncode, sorted(path.name for path in marks.iterdir()), collections


def test_a_delivery_ends_with_the_exit_handlers_but_without_the_tear_down(offline_site):
    """The interpreter's tear-down of every module was a tenth of a filed mail's work: the
    process now ends once the delivery has returned, after running the exit handlers
    (where logging flushes) and nothing else, with the delivery's exit status."""
    status, marks, _ = watched_delivery(offline_site, make_mail("Out of office", headers=VACATION))
    assert (status, marks) == (0, ["exit-handlers"])
    assert "decision=dropped" in offline_site.last_log_line()
    status, marks, _ = watched_delivery(offline_site, make_mail("The printer is jammed"))  # Redmine is down
    assert (status, marks) == (75, ["exit-handlers"])
    assert "redmine" in offline_site.last_log_line()


def test_a_dropped_mail_runs_no_garbage_collection(offline_site):
    """A delivery makes no cyclic garbage worth looking for, and tens of thousands of new
    objects (the imports' modules, classes and functions): the collector, set to wait for
    100 000 instead of 700, never runs."""
    assert watched_delivery(offline_site, make_mail("Out of office", headers=VACATION))[::2] == (0, [])


def test_a_filed_mail_runs_no_garbage_collection(site, token):
    assert watched_delivery(site, make_mail(f"The printer is jammed {token}"))[::2] == (0, [])
    assert "decision=filed" in site.last_log_line()


# --- memory -------------------------------------------------------------------------------

def big_mail(size: int) -> bytes:
    data = random.Random(size).randbytes(size)  # incompressible, the same on every run
    return make_mail("Logs", "The logs are attached.", attachments=[("logs.zip", "application/zip", data)])


@pytest.fixture
def mail_file(tmp_path):
    """A mail with an 8 MiB attachment in a file, as stdin would be."""
    mail = big_mail(8 << 20)
    path = tmp_path / "mail.eml"
    path.write_bytes(mail)
    return path, len(mail)


def traced(step):
    """What *step* left allocated, and the most it held at once (bytes, tracemalloc)."""
    tracemalloc.start()
    try:
        value = step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return value, current, peak


def test_big_input_is_spooled_not_held(mail_file):
    path, size = mail_file
    with path.open("rb") as stdin:
        received, current, peak = traced(lambda: read_message(stdin))
    assert received.data is None and received.spool is not None
    assert current < SLICE and peak < 3 * SLICE  # a slice or two in flight, never the mail
    assert sum(len(piece) for piece in received.chunks()) == size


def test_a_big_mail_is_held_once_after_parsing_and_its_file_is_decoded_to_disk(mail_file):
    path, size = mail_file
    with path.open("rb") as stdin:
        received = read_message(stdin)
    mail, current, peak = traced(lambda: parse(received))
    # Held: the attachment's (still encoded) text, once. While parsing, the standard
    # parser also holds that part's body in pieces before it joins them: about 2 x the
    # mail for a moment (one string per line made it 2.9 x).
    assert current < 1.2 * size
    assert peak < 2.25 * size
    [attachment] = mail.attachments
    with tempfile.TemporaryFile() as out:
        written, current_after, peak_after = traced(lambda: attachment.write_to(out))
    assert written == 8 << 20
    # Decoded a slice at a time: the 8 MiB are never in memory at once. (The library's
    # accessor makes one short-lived encoded copy of the part while checking it.)
    assert peak_after < 1.2 * size


def test_a_20_mb_attachment_is_parsed_and_decoded_holding_about_twice_the_mail(tmp_path):
    """The peak of the whole read: parse (the body in pieces, then joined), the file
    decoded to disk a slice at a time. Before the parser's buffer handed a body over in
    pieces it was 2.8 x the mail, over the 2.5 x a delivery may add to its own peak."""
    data = big_mail(20_000_000)
    size = len(data)
    received = read_message(io.BytesIO(data))
    del data

    def parse_and_decode():
        mail = parse(received)
        with tempfile.TemporaryFile() as out:
            return mail.attachments[0].write_to(out)

    written, current, peak = traced(parse_and_decode)
    assert written == 20_000_000
    assert peak < 2.2 * size


def peak_rss_kib(site, mail: bytes) -> int:
    """The peak resident memory of the installed program delivering *mail*, as the kernel
    counts it: measured by a small Python process that starts it (a child's peak starts
    at its parent's size, so the test runner itself cannot be the parent)."""
    path = site.home / "mail.eml"
    path.write_bytes(mail)
    starter = ("import resource, subprocess, sys\n"
               "with open(sys.argv[1], 'rb') as stdin:\n"
               "    code = subprocess.run(sys.argv[2:], stdin=stdin, stdout=subprocess.DEVNULL,"
               " stderr=subprocess.DEVNULL).returncode\n"
               "print(code, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    command = [sys.executable, "-c", starter, str(path), console_script(), "--config", str(site.config_path)]
    proc = subprocess.run(command, capture_output=True, timeout=300, env={**os.environ, "HOME": str(site.home)})
    code, peak = proc.stdout.split()
    assert int(code) == 0, site.last_log_line()
    return int(peak)


def test_a_process_dropping_a_mail_with_a_20_mb_attachment_adds_under_2_5_times_the_mail(offline_site):
    """Issue #12's bound, for a whole process: a big mail adds at most 2.5 x its size to
    the peak of the same path for a small mail (here a vacation reply, dropped after it is
    parsed, so no Redmine is needed). 2.8 x before the parser's buffer gathered bodies."""
    small = peak_rss_kib(offline_site, make_mail("Out of office", headers=VACATION))
    mail = make_mail("Out of office", "Back on Monday.", headers=VACATION,
                     attachments=[("logs.zip", "application/zip", random.Random(1).randbytes(20_000_000))])
    big = peak_rss_kib(offline_site, mail)
    assert "decision=dropped" in offline_site.last_log_line()
    assert (big - small) * 1024 < 2.5 * len(mail)


def test_a_big_mail_is_kept_in_a_maildir_a_slice_at_a_time(mail_file, tmp_path):
    from m2r_deliver.maildir import deliver_to_maildir

    path, size = mail_file
    with path.open("rb") as stdin:
        received = read_message(stdin)
    kept, current, peak = traced(lambda: deliver_to_maildir(tmp_path / "quarantine", received))
    assert kept.read_bytes() == path.read_bytes()
    assert peak < 3 * SLICE


@pytest.mark.parametrize("message_id", [True, False])
def test_the_delivery_key_of_a_big_mail_reads_it_a_slice_at_a_time(mail_file, message_id):
    from m2r_deliver.mailkey import delivery_key

    path, size = mail_file
    if not message_id:
        path.write_bytes(path.read_bytes().replace(b"Message-ID:", b"X-Old-ID:", 1))
    with path.open("rb") as stdin:
        received = read_message(stdin)
    key, current, peak = traced(lambda: delivery_key(received))
    assert key.startswith("<" if message_id else "sha256:")
    assert peak < 6 * SLICE < size / 1.5  # a few slices and their lines, whatever the mail's size


# --- requests per mail, counted at a loopback proxy in front of the test bed --------------

def requests_seen(proxy) -> list[tuple[str, str]]:
    return [(method, path.split("?")[0]) for method, path, _ in proxy.seen]


def test_a_new_issue_on_a_warm_cache_is_one_request(site, testbed, token):
    """The help-desk address (no Redmine account) among the recipients is looked up as a
    possible watcher once, then remembered as having no account, like a name."""
    jsmith = f"John Smith <{testbed.info['users']['jsmith']['mail']}>"
    with FaultProxy(testbed.url) as proxy:
        site.write_config(url=proxy.url)
        assert site.deliver(make_mail(f"warm-up {token}", sender=jsmith)).returncode == 0
        proxy.seen.clear()
        result = site.deliver(make_mail(f"second {token}", sender=jsmith))
        assert result.returncode == 0 and "decision=filed" in site.last_log_line()
        project_id = testbed.get(f"/projects/{testbed.info['project']}.json")["project"]["id"]
        assert requests_seen(proxy) == [("POST", f"/projects/{project_id}/issues.json")]


def test_a_reply_by_redmine_token_on_a_warm_cache_is_one_request_and_the_note(site, testbed, token):
    jsmith = f"John Smith <{testbed.info['users']['jsmith']['mail']}>"
    with FaultProxy(testbed.url) as proxy:
        site.write_config(url=proxy.url)
        assert site.deliver(make_mail(f"request {token}", sender=jsmith)).returncode == 0
        issue_id = int(re.search(r"issue=#(\d+)", site.last_log_line()).group(1))
        reference = f"<redmine.issue-{issue_id}.20261201090000.1@{testbed.info['host_name']}>"

        def reply(text: str) -> bytes:
            return make_mail(f"Re: [Helpdesk - Support #{issue_id}] request {token}", text, sender=jsmith,
                             headers={"References": reference, "In-Reply-To": reference})

        assert site.deliver(reply("It still fails.")).returncode == 0  # the first reply learns the project
        proxy.seen.clear()
        assert site.deliver(reply("Thanks, it works now.")).returncode == 0
        assert "action=note" in site.last_log_line()
        assert requests_seen(proxy) == [("GET", f"/issues/{issue_id}.json"), ("PUT", f"/issues/{issue_id}.json")]
