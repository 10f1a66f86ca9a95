"""Burst benchmark: several hundred distinct mails delivered by concurrent m2r-deliver
processes into the local test-bed Redmine, then the same mails delivered again; with
``--rdm``, the same run through Redmine's own rdm-mailhandler.rb.

Reports mails per second for both passes, CPU seconds per mail of the delivering
processes (and of the Redmine server, read from /proc), exit statuses, issues filed,
duplicates (issues beyond one per mail) and mails lost (mails without an issue), with
the machine's load. Loopback only; the mail count and the concurrency are bounded on
purpose. The sender is a Redmine user who is a member of the project (both programs
file as that user).

    .venv/bin/python bench/burst.py [--count 300] [--procs 4] [--no-marker] [--rdm]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.message import EmailMessage
from email.utils import formatdate
from pathlib import Path

import requests

TESTBED = Path(os.environ.get("M2R_TESTBED_DIR", "/var/tmp/m2r-testbed")) / "testbed.json"
MAX_COUNT, MAX_PROCS = 1000, 8


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=300, help=f"distinct mails (at most {MAX_COUNT})")
    parser.add_argument("--procs", type=int, default=4, help=f"concurrent processes (at most {MAX_PROCS})")
    parser.add_argument("--no-marker", action="store_true", help="run without [redmine] marker_field")
    parser.add_argument("--rdm", action="store_true", help="deliver with rdm-mailhandler.rb instead")
    args = parser.parse_args()
    count, procs = min(args.count, MAX_COUNT), min(args.procs, MAX_PROCS)
    testbed = json.loads(TESTBED.read_text())
    run = uuid.uuid4().hex[:8]
    sender = testbed["users"]["jsmith"]["mail"]
    with tempfile.TemporaryDirectory(prefix="m2r-burst-") as home:
        config = write_config(Path(home), testbed, marker=not args.no_marker)
        if args.rdm:
            command = ["ruby", testbed["rdm_mailhandler"], "--url", testbed["url"], "--key",
                       testbed["mail_handler_key"], "--project", "helpdesk", "--tracker", "Support"]
        else:
            command = [str(Path(sys.executable).parent / "m2r-deliver"), "--config", str(config)]
        mails = [make_mail(run, n, sender) for n in range(count)]
        if not args.rdm:  # a site's ledger and name cache exist before a burst comes
            subprocess.run(command, input=make_mail(f"warm-up {run}", 0, sender), capture_output=True,
                           env={**os.environ, "HOME": home}, timeout=600)
        load_before = os.getloadavg()
        first = deliver_all(command, mails, procs, home, testbed)
        second = deliver_all(command, mails, procs, home, testbed)
        load_after = os.getloadavg()
        log_file = Path(home) / "m2r.log"
        log = log_file.read_text().splitlines() if log_file.exists() else []
    expected = {f"burst {run} {n:04d}" for n in range(count)}
    # Redmine's "contains" matches each word: the warm-up's issue is found too, and left out.
    per_subject = Counter(issue["subject"] for issue in issues_of_run(testbed, run) if issue["subject"] in expected)
    report = {
        "program": "rdm-mailhandler.rb" if args.rdm else "m2r-deliver",
        "run": run,
        "mails": count,
        "processes": procs,
        "marker_field": not args.no_marker and not args.rdm,
        "cpus": os.cpu_count(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in load_after],
        "first_pass": first,
        "second_pass": second,
        "decisions": dict(Counter(re.search(r"decision=(\S+)", line).group(1) for line in log)),
        "tempfail_errors": dict(Counter(re.search(r'error=("[^"]*"|\S+)', line).group(1) for line in log
                                        if "decision=tempfail" in line)),
        "issues_filed": sum(per_subject.values()),
        "duplicates": sum(n - 1 for n in per_subject.values() if n > 1),
        "lost": len(expected - set(per_subject)),
    }
    print(json.dumps(report, indent=2))
    return 0 if report["duplicates"] == 0 and report["lost"] == 0 else 1


def write_config(home: Path, testbed: dict, *, marker: bool) -> Path:
    key = home / "api-key"
    key.write_text(testbed["admin_key"])
    key.chmod(0o600)
    config = home / "config.toml"
    config.write_text(
        f'[redmine]\nurl = "{testbed["url"]}"\nkey_file = "{key}"\ntimeout = 60\n'
        + ('marker_field = "Message-ID"\n' if marker else "")
        + f'\n[issue]\nproject = "helpdesk"\ntracker = "Support"\n\n[state]\ndir = "{home / "state"}"\n\n'
        f'[log]\nsyslog = false\nfile = "{home / "m2r.log"}"\n\n'
        # One sender sends every mail of the burst: the rate limit still counts each one,
        # but is set above the burst so that none is held.
        f'[guard]\nrate_limit = {MAX_COUNT + 1}\n')
    config.chmod(0o600)
    return config


def make_mail(run: str, n: int, sender: str) -> bytes:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = "helpdesk@example.org"
    msg["Subject"] = f"burst {run} {n:04d}" if not run.startswith("warm-up") else f"burst-{run}"
    msg["Date"] = formatdate()
    msg["Message-ID"] = f"<burst.{run.replace(' ', '-')}.{n}@bench.example.org>"
    msg.set_content(f"Request number {n} of burst {run}.\n\nThe printer on floor {n % 9} is jammed again.\n")
    return b"From user@example.org Fri Nov 27 10:00:00 2026\n" + msg.as_bytes()


def deliver_all(command: list[str], mails: list[bytes], procs: int, home: str, testbed: dict) -> dict:
    env = {**os.environ, "HOME": home}

    def one(mail: bytes) -> tuple[int, float, str]:
        started = time.monotonic()
        done = subprocess.run(command, input=mail, capture_output=True, env=env, timeout=600)
        said = (done.stdout + done.stderr).decode(errors="replace").strip().splitlines()
        return done.returncode, time.monotonic() - started, said[-1][:160] if said else ""

    children, server = _cpu_children(), _cpu_server(testbed)
    started = time.monotonic()
    with ThreadPoolExecutor(max_workers=procs) as pool:
        results = list(pool.map(one, mails))
    wall = time.monotonic() - started
    children, server = _cpu_children() - children, _cpu_server(testbed) - server
    seconds = sorted(s for _, s, _ in results)
    return {
        "wall_s": round(wall, 1),
        "mails_per_s": round(len(mails) / wall, 2),
        "cpu_s_per_mail": round(children / len(mails), 4),
        "server_cpu_s_per_mail": round(server / len(mails), 4),
        "exit_statuses": dict(Counter(status for status, _, _ in results)),
        "failures_said": dict(Counter(said for status, _, said in results if status != 0)),
        "process_ms_p50": round(statistics.median(seconds) * 1000),
        "process_ms_p95": round(seconds[int(len(seconds) * 0.95) - 1] * 1000),
    }


def _cpu_children() -> float:
    """CPU seconds (user + system) of every child process reaped so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _cpu_server(testbed: dict) -> float:
    """CPU seconds the Redmine server process has used, from /proc (0 when unknown)."""
    try:
        pid = Path(testbed.get("pid_file", "")).read_text().strip()
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, ValueError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def issues_of_run(testbed: dict, run: str) -> list[dict]:
    found, offset = [], 0
    while True:
        page = requests.get(f"{testbed['url']}/issues.json", timeout=60,
                            headers={"X-Redmine-API-Key": testbed["admin_key"]},
                            params={"status_id": "*", "subject": f"~burst {run}", "limit": 100,
                                    "offset": offset}).json()
        found += page["issues"]
        offset += 100
        if offset >= page["total_count"]:
            return found


if __name__ == "__main__":
    sys.exit(main())
