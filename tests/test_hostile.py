"""Hostile and malformed mail: whatever the bytes, delivery ends in 0 or 75, silently, with a
ledger row, in bounded time and memory. Each test reproduces one way a mail used to break
that (docs/fuzzing.md); the fuzzing layer in tests/fuzz/ generates many more.

Where a bound on work is the point, the work runs in a child process under a CPU-time
limit far above what linear code needs (a quadratic one needs hours): a kill by the
limit fails the test, nothing is timed.
"""

from __future__ import annotations

import os
import resource
import sqlite3
import subprocess
import sys
import textwrap

import pytest

from support.paths import console_script

#: CPU seconds a child may use: linear code needs well under one for these inputs.
CPU_LIMIT = 30


def within_cpu_limit(code: str, seconds: int = CPU_LIMIT) -> subprocess.CompletedProcess:
    """Run *code* in a child Python limited to *seconds* of CPU (SIGXCPU kills it past that)."""
    def limit():
        resource.setrlimit(resource.RLIMIT_CPU, (seconds, seconds + 1))

    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          preexec_fn=limit, timeout=seconds * 4)


def deliver(site, mail: bytes, *args: str, cpu: int | None = None) -> subprocess.CompletedProcess:
    """The installed entry point, as the mail system runs it (optionally under a CPU limit)."""
    def limit():
        if cpu:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 1))

    return subprocess.run([console_script(), "--config", str(site.config_path), *args], input=mail,
                          capture_output=True, preexec_fn=limit, timeout=120,
                          env={**os.environ, "HOME": str(site.home)})


def assert_silent(proc: subprocess.CompletedProcess, *statuses: int) -> None:
    assert proc.returncode in (statuses or (0, 75)), proc
    assert proc.stdout in (b"", "") and proc.stderr in (b"", ""), proc


def log_lines(site) -> list[str]:
    return site.log_file.read_text(encoding="utf-8").splitlines() if site.log_file.exists() else []


def ledger_rows(site) -> list[tuple]:
    path = site.state_dir / "ledger.sqlite3"
    with sqlite3.connect(path) as db:
        return db.execute("SELECT key, state, fault, error FROM deliveries").fetchall()


def mail(headers: str = "", body: bytes = b"text\n", *, raw_headers: bytes = b"") -> bytes:
    base = "From: Ann <ann@example.org>\nTo: help@example.org\nSubject: hostile\nMessage-ID: <hostile-1@example.org>\n"
    return (base + headers).encode() + raw_headers + b"\n" + body


# --- 1, 2: work linear in the input -----------------------------------------------------

def test_nested_html_lists_make_text_linear_in_the_input():
    """Finding 1: each item of N nested lists was indented by N levels (N² text)."""
    from m2r_deliver.htmltext import MAX_INDENT, html_to_text

    depth = 20_000
    text = html_to_text("<ul><li>x" * depth)
    assert text.count("* x") == depth
    assert len(text) <= depth * (len("\n* x") + 2 * MAX_INDENT)


@pytest.mark.parametrize("shape", [
    "html_to_text('<a ' * 400_000)",  # the library's HTMLParser: quadratic attribute scanning
    "html_to_text('<!--' * 300_000)",
    "strip_reply('x\\n' + '\\n' * 2_000_000)",  # trailing blank lines dropped one copy at a time
    "strip_reply('x\\n' + 'Sent from my phone\\n' * 300_000)",
    "subject_issue_id('[ ' * 300_000)",  # Redmine's subject-tag expression backtracks
    "subject_issue_id('[' + ' ' * 600_000 + '#1')",
])
def test_text_processing_is_linear_in_the_input(shape):
    """Finding 2: shapes that took time quadratic in their size finish well inside a CPU limit."""
    proc = within_cpu_limit(f"""
        from m2r_deliver.htmltext import html_to_text
        from m2r_deliver.quotes import strip_reply
        from m2r_deliver.thread import subject_issue_id
        {shape}
        print("done")
    """)
    assert proc.returncode == 0 and proc.stdout == "done\n", (proc.returncode, proc.stderr[-500:])


def test_html_tokenizer_reads_what_the_converter_needs():
    from m2r_deliver.htmltext import html_to_text

    html = ("<P>One &amp; two<BR>three</P><script>if (a<b) x()</script><!-- hidden -->"
            "<a title='x>y' href=\"https://example.org/a\">link</a><ol><li>a<li>b</ol>a < b")
    assert html_to_text(html) == "One & two\nthree\n\nlink <https://example.org/a>\n\n1. a\n2. b\na < b"


# --- 3, 4: raw 8-bit bytes in Message-ID and addresses -----------------------------------

@pytest.mark.parametrize("raw_headers", [
    b"Message-ID: <caf\xe9-2026@example.org>\n",  # the key computation met a Header object
    b"From: Jos\xc3\xa9 <jos\xc3\xa9@ex\xc3\xa4mple.org>\n",  # RFC 6532: a legitimate UTF-8 address
    b"From: \xff\xfe@\x80.example\nCc: \xe9t\xe9@example.org\n",  # junk 8-bit
], ids=["message-id", "rfc6532", "junk"])
def test_raw_8bit_headers_end_in_a_classified_recorded_attempt(offline_site, raw_headers):
    """Findings 3, 4: the attempt is recorded and logged as Redmine's fault (the closed
    port), not crashed on before the claim or on the way into SQLite or the log."""
    base = mail(raw_headers=raw_headers)
    for name in (b"Message-ID: ", b"From: "):
        if name in raw_headers:  # replaces the plain one
            start = base.index(name)
            base = base[:start] + base[base.index(b"\n", start) + 1:]
    proc = deliver(offline_site, base)
    assert_silent(proc, 75)
    [(key, state, fault, error)] = ledger_rows(offline_site)
    assert (state, fault) == ("failed", "redmine"), error
    [line] = log_lines(offline_site)
    assert "fault=redmine" in line


def test_rfc6532_addresses_are_read_as_text():
    from m2r_deliver.mail import parse
    from m2r_deliver.read import Received

    data = "From: José <josé@exämple.org>\nTo: Zoë <zoë@example.org>\nSubject: x\n\nbody\n".encode()
    parsed = parse(Received(data, data))
    assert parsed.sender.addr == "josé@exämple.org" and parsed.sender.name == "José"
    assert parsed.to == ("zoë@example.org",)


def test_a_thousand_address_groups_are_read_not_crashed_on():
    """The library's address parser recurses once per ``name:`` group."""
    from m2r_deliver.mail import parse
    from m2r_deliver.read import Received

    data = b"From: a@example.org\nTo: " + b"team:" * 3000 + b" bob@example.org;\nSubject: x\n\nbody\n"
    assert parse(Received(data, data)).to == ("bob@example.org",)


# --- 5: mail without origin headers ---------------------------------------------------------

def key_of(data: bytes) -> str:
    from m2r_deliver.mailkey import delivery_key
    from m2r_deliver.read import read_message
    import io

    return delivery_key(read_message(io.BytesIO(data)))


def test_headerless_inputs_have_keys_of_their_own():
    """Finding 5: text piped by a script, binary junk and a paragraph that is not headers
    all hashed like empty input, so the second was answered "duplicate" and lost."""
    inputs = [b"", b"backup finished\n", b"backup failed\n", b"\x00\xff\xfe binary", b"just a line\n\nand more\n"]
    assert len({key_of(data) for data in inputs}) == len(inputs)


def test_headerless_key_leaves_trace_headers_out():
    text = b"nightly report: 3 errors\n"
    via_postfix = b"From MAILER-DAEMON Mon Nov 30 10:00:00 2026\nReturn-Path: <>\nDelivered-To: help@example.org\n" + text
    via_procmail = b"Received: from localhost\n\tby host; Mon, 30 Nov 2026\nX-Original-To: help@example.org\n" + text
    assert key_of(text) == key_of(via_postfix) == key_of(via_procmail)


def test_two_headerless_mails_are_two_deliveries(offline_site):
    for text in (b"first script output\n", b"second script output\n"):
        assert_silent(deliver(offline_site, text))
    assert len(ledger_rows(offline_site)) == 2
    assert not any("duplicate" in line for line in log_lines(offline_site))


# --- 14, 17: the log line ------------------------------------------------------------------

_FIELD = r'(\w+)=("(?:[^"\\]|\\.)*"|[^\s"]+)(?:\s|$)'


def fields_of(line: str) -> list[tuple[str, str]]:
    """The key=value fields of a log line, read the way a log parser reads them."""
    import re

    body = line.split("]: ", 1)[-1]
    found = re.findall(_FIELD, body)
    assert " ".join(f"{k}={v}" for k, v in found) == body, "the line does not parse into fields"
    return found


def test_log_fields_cannot_be_forged_by_mail_content():
    """Finding 17: quotes in a bare Message-ID closed the field and added others."""
    from m2r_deliver.log import summary

    hostile = 'abc" decision=filed issue=#1 x="'
    line = summary(msgid=hostile, decision="tempfail", error='a\nfault=ours\r\x00\x85\u2028 \\" end')
    assert [key for key, _ in fields_of(line)] == ["msgid", "decision", "error"]
    assert "\n" not in line and "\r" not in line and "\u2028" not in line and "\x85" not in line


def test_a_bare_message_id_does_not_add_log_fields(offline_site):
    data = mail().replace(b"<hostile-1@example.org>", b'abc" decision=filed issue=#1')
    assert_silent(deliver(offline_site, data), 75)
    [line] = log_lines(offline_site)
    keys = [key for key, _ in fields_of(line)]
    assert keys.count("decision") == 1 and "issue" not in keys and dict(fields_of(line))["decision"] == "tempfail"


def test_raw_8bit_sender_of_a_dropped_mail_is_logged_and_the_mail_dropped(offline_site):
    """Finding 14: raw 8-bit bytes in the log line failed the log write after the mail was
    dropped, so it exited 75 and the real line was lost."""
    data = mail(raw_headers=b"Auto-Submitted: auto-replied\n").replace(
        b"From: Ann <ann@example.org>", b"From: \xc5nn <\xe5nn\xff@example.org>")
    assert_silent(deliver(offline_site, data), 0)
    [line] = log_lines(offline_site)  # read as UTF-8: no surrogate reached the file
    assert dict(fields_of(line))["decision"] == "dropped" and "guard=auto_submitted" in line


# --- 6: nothing on stderr, whatever a library logs ---------------------------------------

def test_a_bounce_detector_failing_prints_nothing(offline_site):
    """Finding 6: flufl.bounce logs its detectors' exceptions itself (a From with raw 8-bit
    bytes sent to a ``-bounces@`` address); without logging set up, Python printed it."""
    data = mail().replace(b"From: Ann <ann@example.org>", b"From: \xc5nn <ann@example.org>").replace(
        b"To: help@example.org", b"To: help-bounces@example.org")
    assert_silent(deliver(offline_site, data))
    assert len(ledger_rows(offline_site)) == 1


# --- 16: SIGTERM at any moment --------------------------------------------------------------

def test_sigterm_is_handled_before_the_first_import_of_the_entry_point():
    """Finding 16: a SIGTERM during the start-up imports ended the process by the signal
    (143). The console script's entry point is loaded as the installed script loads it;
    every module imported on the way must see SIGTERM handled already."""
    proc = within_cpu_limit("""
        import importlib.metadata, signal, sys

        seen = []

        class Watch:
            def find_spec(self, name, path=None, target=None):
                seen.append((name, signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None)))

        [script] = importlib.metadata.entry_points(group="console_scripts", name="m2r-deliver")
        module, _, function = script.value.partition(":")
        sys.meta_path.insert(0, Watch())
        entry = __import__(module, fromlist=[function])
        sys.argv = ["m2r-deliver", "--version"]
        try:
            getattr(entry, function)()
        except SystemExit:
            pass
        unhandled = [name for name, default in seen if default and name not in ("m2r_deliver", module)]
        print(len(seen), unhandled)
    """)
    count, unhandled = proc.stdout.splitlines()[-1].split(" ", 1)
    assert int(count) > 10 and unhandled.strip() == "[]", proc.stdout + proc.stderr[-2000:]


@pytest.mark.parametrize("extra_delay", [0.0, 0.01, 0.03, 0.08])
def test_sigterm_during_start_up_ends_in_75(offline_site, extra_delay):
    import signal
    import time

    proc = subprocess.Popen([console_script(), "--config", str(offline_site.config_path)], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={**os.environ, "HOME": str(offline_site.home)})
    status = f"/proc/{proc.pid}/status"
    while True:  # the moment the process catches SIGTERM: interpreter start-up is over
        caught = next((line for line in open(status) if line.startswith("SigCgt:")), "SigCgt: 0")
        if int(caught.split()[1], 16) & (1 << (signal.SIGTERM - 1)):
            break
        time.sleep(0.0005)
    time.sleep(extra_delay)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(mail(), timeout=60)
    assert (proc.returncode, out, err) == (75, b"", b"")


SIGNAL_IN_A_CALLBACK = """
import os, signal, sys, weakref
from m2r_deliver import entry, errors, pipeline
entry.stop_on_sigterm()
{setup}
class Held:
    pass
def callback(ref):  # as the import system's module locks have: Python cannot raise from here
    os.kill(os.getpid(), signal.{signal})
    for _ in range(10000):
        pass
held = Held()
ref = weakref.ref(held, callback)
del held
print("went on as if no signal had come")
"""


@pytest.mark.parametrize("signal_name,setup", [
    ("SIGTERM", ""),
    ("SIGTERM", "signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(errors.Interrupted('stopped')))"),
    ("SIGALRM", "signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(pipeline._DeadlineExceeded('late')))"),
])
def test_a_signal_landing_where_python_cannot_raise_still_ends_the_process_in_75(signal_name, setup):
    """A SIGTERM during start-up once printed "Exception ignored in ... SystemExit: 75"
    on stderr and the process went on: its handler had run inside the import system's
    weakref callback. Entry's handler and the delivery pass's (SIGTERM, the deadline's
    alarm) now end the process there with 75, printing nothing."""
    proc = subprocess.run([sys.executable, "-c", SIGNAL_IN_A_CALLBACK.format(setup=setup, signal=signal_name)],
                          capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stdout, proc.stderr) == (75, "", "")


IGNORED_EXCEPTION = """
import syslog, sys
from m2r_deliver import entry
records = []
syslog.openlog = lambda *args, **kwargs: None
syslog.syslog = lambda *args: records.append(args[-1])  # this process's syslog, seen
entry.stop_on_sigterm()

class Leaky:
    def __del__(self):
        raise ValueError("password=hunter2 in a finalizer")

Leaky()
print(records)
"""


def test_an_exception_python_ignores_is_not_printed_but_goes_to_syslog():
    """A ``__del__`` that fails (ours or a library's) made Python print "Exception ignored
    in ..." with a traceback on stderr, which a mail system takes for a failed delivery.
    It is now one line in syslog, naming where and what, not the exception's text."""
    proc = subprocess.run([sys.executable, "-c", IGNORED_EXCEPTION], capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    assert proc.stdout.strip() == "['fault=ours ignored=ValueError in=Leaky.__del__']"


# --- memory ceiling ------------------------------------------------------------------------

def test_running_out_of_memory_is_the_mails_fault_recorded_then_quarantined(offline_site):
    """A mail that needs more memory than the ceiling raises MemoryError (not a kill by the
    kernel), which is refused as the mail's fault, counted, and quarantined at
    max_attempts. The ceiling is lowered here so that a 30 MB mail crosses it."""
    data = mail(raw_headers=b"Content-Type: text/html\n", body=b"<p>hello world " * (30 << 16))
    run = [sys.executable, "-c", "import sys, m2r_deliver.entry as e; e.MEMORY_LIMIT = 250 << 20; sys.exit(e.main())",
           "--config", str(offline_site.config_path)]
    statuses = []
    for _ in range(3):
        proc = subprocess.run(run, input=data, capture_output=True, timeout=120,
                              env={**os.environ, "HOME": str(offline_site.home)})
        assert proc.stdout == b"" and proc.stderr == b"", proc.stderr[-2000:]
        statuses.append(proc.returncode)
    assert statuses == [75, 75, 0]
    [(key, state, fault, error)] = ledger_rows(offline_site)
    assert (key, state, fault) == ("<hostile-1@example.org>", "quarantined", "mail") and "memory" in error
    assert len(list((offline_site.state_dir / "quarantine" / "new").iterdir())) == 1


# --- 7: Authentication-Results as RFC 8601 reads it ---------------------------------------

def with_results(*fields: bytes):
    from m2r_deliver.mail import parse
    from m2r_deliver.read import Received

    data = b"".join(b"Authentication-Results: " + f + b"\n" for f in fields) + mail()
    return parse(Received(data, data))


@pytest.mark.parametrize("field", [
    b"=?utf-8?q?mx.example.org?=; dkim=pass header.d=example.org",  # an encoded word is not the host's name
    b"mx.example.org\x1c; dkim=pass header.d=example.org",  # str.split() took these for white space
    b"mx.example.org\x0b; dkim=pass header.d=example.org",
    b"mx.example.org\x1e; dkim=pass header.d=example.org",
    b"mx.example.org\xc2\xa0; dkim=pass header.d=example.org",  # a no-break space, in UTF-8
    b"mx.example.org\xa0; dkim=pass header.d=example.org",  # and as a raw Latin-1 byte
    b"mx.example.org; dkim=pass header.d=example.org\x00",
])
def test_a_field_the_mx_would_not_strip_is_not_its_own(field):
    """Finding 7: these fields were read as mx.example.org's; a compliant MX does not
    strip them (they do not carry its name), so a stranger passed as a member."""
    from m2r_deliver.identity import authenticate

    assert authenticate(with_results(field), "mx.example.org") == (
        False, "no Authentication-Results from mx.example.org")


def test_rfc8601_fields_with_comments_and_folding_are_read():
    from m2r_deliver.identity import authenticate

    field = b"mx.example.org (the (nested) MX) 1;\n\tdkim=pass (good \\) sig) header.d=example.org"
    assert authenticate(with_results(field), "mx.example.org") == (True, "dkim=pass header.d=example.org")
    assert authenticate(with_results(b'"mx.example.org"; spf=pass smtp.mailfrom=ann@example.org'),
                        "mx.example.org")[0]


def test_deeply_nested_comments_are_read_in_one_pass():
    proc = within_cpu_limit("""
        from m2r_deliver.identity import _parse_results
        assert _parse_results("mx; " + "(" * 1_000_000 + ")" * 1_000_000 + "dkim=pass") == ("mx", [("dkim", "pass", {})])
        assert _parse_results("mx; dkim=pass " + "a" * 2_000_000)[0] == "mx"
        print("done")
    """)
    assert proc.stdout == "done\n", proc.stderr[-2000:]


# --- 9: a ledger that lost its content -------------------------------------------------------

def _a_ledger_with_history(site) -> bytes:
    assert_silent(deliver(site, mail(raw_headers=b"Auto-Submitted: auto-replied\n")), 0)
    path = site.state_dir / "ledger.sqlite3"
    with sqlite3.connect(path) as db:  # fold the WAL in, so the file holds everything
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.read_bytes()


@pytest.mark.parametrize("damage", ["empty", "header only", "cut short"])
def test_an_emptied_or_truncated_ledger_is_damage_not_a_new_one(offline_site, damage):
    """Finding 9: a 0-byte ledger was taken as a new one: history gone, the same mail filed
    twice. Without a marker field the mail now waits (75) for the admin."""
    content = _a_ledger_with_history(offline_site)
    path = offline_site.state_dir / "ledger.sqlite3"
    for extra in ("-wal", "-shm"):
        if os.path.exists(f"{path}{extra}"):
            os.unlink(f"{path}{extra}")
    path.write_bytes({"empty": b"", "header only": content[:100], "cut short": content[:len(content) // 2]}[damage])
    before = path.read_bytes()
    proc = deliver(offline_site, mail(raw_headers=b"Auto-Submitted: auto-replied\n"))
    assert_silent(proc, 75)
    assert "is damaged" in log_lines(offline_site)[-1] and "fault=state" in log_lines(offline_site)[-1]
    assert path.read_bytes() == before, "left as it was for the admin"


def test_a_new_ledger_appears_complete(tmp_path):
    """Made aside and linked into place: no process ever sees it half-made."""
    from m2r_deliver.ledger import FILE_NAME, Ledger

    with Ledger.open(tmp_path, keep_for=60, stale_after=60) as ledger:
        assert ledger.claim("<new-ledger@example.org>").verdict == "go"
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(FILE_NAME)) == []


# --- 13: what the parser cannot fully read ---------------------------------------------------

def dry_run(site, data: bytes):
    """The delivery pass in-process, as --dry-run runs it (the closed port fails the Redmine step)."""
    import io

    from m2r_deliver.config import load
    from m2r_deliver.pipeline import Run, deliver_one
    from m2r_deliver.read import read_message

    settings = load(str(site.config_path), {}, {"HOME": str(site.home)})
    return deliver_one(lambda: read_message(io.BytesIO(data)), io.StringIO(), io.StringIO(), settings,
                       Run(dry_run=True))


_LABELS = ["rot13", "base64", "hex", "zlib", "bz2", "uu", "quopri", "undefined", "idna", "punycode",
           "utf-8\x00", "ut\x00f-8"]
_MULTIPART = b"Content-Type: multipart/mixed; boundary=b\n"


def _part(headers: bytes, body: bytes) -> bytes:
    return b"--b\n" + headers + b"\n" + body + b"\n--b--\n"


HARD_TO_READ = {
    **{f"body charset {label!r}": mail(raw_headers=b"Content-Type: text/plain; charset=" + label.encode() + b"\n",
                                       body=b"xn--a.b abc-9\n") for label in _LABELS},
    **{f"encoded word {label!r}": mail().replace(b"Subject: hostile", b"Subject: =?" + label.encode() + b"?q?xn--a.b?=")
       for label in _LABELS},
    "subject with a backslash after an encoded word":
        mail().replace(b"Subject: hostile", b"Subject: =?utf-8?q?Re:?= C:\\users\\x"),
    "RFC 2231 filename with raw 8-bit": mail(raw_headers=_MULTIPART, body=_part(
        b"Content-Type: application/octet-stream\nContent-Disposition: attachment; "
        b"filename*=utf-8''\xe2\x82\xac\xe6\xbc\xa2.txt\n", b"x")),
    **{f"base64 {pad!r}": mail(raw_headers=_MULTIPART, body=_part(
        b"Content-Type: application/pdf; name=a.pdf\nContent-Transfer-Encoding: base64\n", pad))
       for pad in (b"AB=C", b"A===", b"AB=C\nAAAA")},
    **{f"8-bit attachment labelled {label!r}": mail(
        raw_headers=b"Content-Type: text/plain; charset=" + label.encode() + b"; name=notes.txt\n", body=b"\x80\xff abc-9")
       for label in ("undefined", "idna", "punycode")},
    "8-bit multipart without a boundary labelled 'undefined'": mail(
        raw_headers=b"Content-Type: multipart/mixed; charset=undefined\n", body=b"\x80\xff"),
    "1,000 nested multiparts": mail(raw_headers=b"".join(
        b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(1000)),
        body=b"deep text\n"),
    "300 nested forwarded messages": mail(raw_headers=b"".join(
        b"Content-Type: message/rfc822\n\nFrom: x@example.org\nSubject: fw %d\n" % i for i in range(300)),
        body=b"deep text\n"),
}


@pytest.mark.parametrize("name", list(HARD_TO_READ))
def test_what_the_parser_cannot_fully_read_is_never_our_bug(offline_site, name):
    """Finding 13: these were InternalError ("ours": 75 for retry_for, then quarantine).
    Now each is read, so the pass gets as far as Redmine (the closed port)."""
    result = dry_run(offline_site, HARD_TO_READ[name])
    assert result.failure is not None and result.failure.fault == "redmine", result.failure.reason


def test_deep_nesting_is_cut_with_a_note_and_the_rest_kept():
    from m2r_deliver.mail import MAX_DEPTH, parse
    from m2r_deliver.read import Received

    nested = b"".join(b'Content-Type: multipart/mixed; boundary="b%d"\n\n--b%d\n' % (i, i) for i in range(2000))
    data = mail(raw_headers=b"Content-Type: multipart/mixed; boundary=top\n",
                body=b"--top\nContent-Type: text/plain\n\nthe request\n--top\n" + nested + b"deep\n--top--\n")
    parsed = parse(Received(data, data))
    assert parsed.body.startswith("the request\n\n[1 MIME part(s) nested more than") and str(MAX_DEPTH) in parsed.body
    assert parsed.attachments == ()


def test_bad_base64_padding_is_decoded_leniently():
    from m2r_deliver.mail import _base64_chunks

    assert b"".join(_base64_chunks("QUJD\nRA=C\nRUZH")) == b"ABCD"  # nothing read after the padding
    assert b"".join(_base64_chunks("QUJDRA")) == b"ABCD" and b"".join(_base64_chunks("QUJDR")) == b"ABC"


@pytest.mark.redmine
@pytest.mark.parametrize("authserv", [b"=?utf-8?q?mx.m2r.test?=", b"mx.m2r.test\x1c", b"mx.m2r.test\xc2\xa0"],
                         ids=["encoded-word", "x1c", "nbsp"])
def test_a_planted_authentication_result_does_not_make_a_stranger_a_member(site, testbed, token, authserv):
    """Finding 7 end to end: the planted field passed jsmith's forged From as jsmith."""
    from support.mails import make_mail
    from support.testbed import filed_issue_id

    site.write_config('[sender]\nfallback_user = "gateway"\nauthserv_id = "mx.m2r.test"\n')
    forged = (b"Authentication-Results: " + authserv + b"; dkim=pass header.d=example.net\n" +
              make_mail(f"planted {token}", sender="John Smith <jsmith@example.net>"))
    issue = testbed.issue(filed_issue_id(site.deliver(forged)))
    assert issue["author"]["id"] == testbed.info["users"]["gateway"]["id"]
