"""Shared pieces of the benchmarks: the test-bed, a throw-away site config, timing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TESTBED = Path(os.environ.get("M2R_TESTBED_DIR", "/var/tmp/m2r-testbed")) / "testbed.json"
SCRIPT = Path(sys.executable).parent / "m2r-deliver"


def testbed() -> dict:
    return json.loads(TESTBED.read_text())


def site_config(info: dict, extra: str = "", *, timeout: float = 30) -> Path:
    """A config in a fresh temporary home (its folder), filing into the test-bed's helpdesk
    project, logging to ``log`` there."""
    home = Path(tempfile.mkdtemp(prefix="m2r-bench."))
    key = home / "key"
    key.write_text(info["admin_key"])
    key.chmod(0o600)
    config = home / "config.toml"
    config.write_text(f'[redmine]\nurl = "{info["url"]}"\nkey_file = "{key}"\ntimeout = {timeout}\n\n'
                      f'[issue]\nproject = "{info["project"]}"\ntracker = "Support"\n\n'
                      f'[state]\ndir = "{home / "state"}"\n\n[log]\nsyslog = false\nfile = "{home / "log"}"\n\n{extra}')
    config.chmod(0o600)
    return config


def request_mail(sender: str = "jsmith@example.net", tag: str = "bench") -> bytes:
    msgid = f"{tag}.{uuid.uuid4().hex}@bench.example.org"
    return (f"From: {sender}\r\nTo: request@example.org\r\nSubject: {tag} {msgid[:20]}\r\n"
            f"Message-ID: <{msgid}>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
            "The printer on floor 3 prints blank pages.\r\n").encode()


def timed(command: list[str], stdin: bytes) -> tuple[float, int]:
    """Wall time of one whole process, in ms, and its exit status."""
    wall, _, status = timed_cpu(command, stdin)
    return wall, status


def timed_cpu(command: list[str], stdin: bytes) -> tuple[float, float, int]:
    """Wall time and CPU time (user + system, of the process and its children) of one
    whole process, in ms, and its exit status. CPU time is less disturbed than wall time
    by others' work on a shared machine."""
    with tempfile.TemporaryFile() as source:
        source.write(stdin)
        source.seek(0)
        start = time.perf_counter()
        proc = subprocess.Popen(command, stdin=source, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        _, code, usage = os.wait4(proc.pid, 0)
        wall = (time.perf_counter() - start) * 1000
    proc.returncode = os.waitstatus_to_exitcode(code)
    return wall, (usage.ru_utime + usage.ru_stime) * 1000, proc.returncode


def median_ms(samples: list[float]) -> float:
    return round(statistics.median(samples), 1)


def machine_state() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
