"""Peak memory and wall time for one mail with a big attachment, through m2r-deliver and
through Redmine's own rdm-mailhandler.rb, against the same test-bed Redmine.

    .venv/bin/python bench/attachment_20mb.py [--runs 3] [--sizes-mb 20,4]

Each run is one process started as a mail system starts it (the mail on stdin); its peak
memory is the maximum resident set size of that process and its time the wall time from
start to exit, both as /usr/bin/time reports them. The Redmine server's own work is in the
wall time but not in the memory figure.
Prints a Markdown report (results and the machine's state) on stdout.
"""

from __future__ import annotations

import argparse
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import uuid
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import requests
from common import site_config, testbed

ROOT = Path(__file__).resolve().parent.parent


def build_mail(size: int, tag: str, sender: str) -> bytes:
    msg = MIMEMultipart()
    msg.attach(MIMEText(f"Logs attached ({tag}).", "plain", "utf-8"))
    data = random.Random(size).randbytes(size)  # incompressible, the same on every run
    attachment = MIMEApplication(data, _subtype="zip")
    attachment.add_header("Content-Disposition", "attachment", filename="logs.zip")
    msg.attach(attachment)
    msg["From"] = sender
    msg["To"] = "request@example.org"
    msg["Subject"] = f"bench {tag}"
    msg["Message-ID"] = f"<{tag}@bench.example.org>"
    return msg.as_bytes()


def measure(command: list[str], mail: bytes, env: dict[str, str]) -> dict:
    """Run *command* with *mail* on stdin under /usr/bin/time: its exit status, wall time
    and peak RSS. (A child forked from this process would inherit this process's own
    high-water mark in its rusage; time(1) is small, so its child's figure is the
    program's own.)"""
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as output, \
            tempfile.NamedTemporaryFile(mode="r") as report:
        stdin.write(mail)
        stdin.seek(0)
        status = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", report.name, *command], stdin=stdin,
                                stdout=output, stderr=output, env=env).returncode
        max_kb, wall = report.read().split()[-2:]
        output.seek(0)
        text = output.read().decode(errors="replace")
    return {"rc": status, "wall_s": float(wall), "maxrss_mb": int(max_kb) / 1024, "out": text[-300:]}


def latest_issue(info: dict, subject: str) -> dict | None:
    response = requests.get(f"{info['url']}/issues.json", timeout=30, headers={"X-Redmine-API-Key": info["admin_key"]},
                            params={"status_id": "*", "subject": f"~{subject}", "sort": "id:desc", "limit": 1})
    issues = response.json()["issues"]
    if not issues:
        return None
    response = requests.get(f"{info['url']}/issues/{issues[0]['id']}.json", timeout=30,
                            headers={"X-Redmine-API-Key": info["admin_key"]}, params={"include": "attachments"})
    return response.json()["issue"]


def outcome(info: dict, subject: str) -> str:
    issue = latest_issue(info, subject)
    if issue is None:
        return "no issue"
    files = ", ".join(f"{a['filename']} {a['filesize']} B" for a in issue["attachments"]) or "no attachment"
    note = "note in description" if "Attachment not filed" in (issue["description"] or "") else "no note"
    return f"#{issue['id']}: {files}; {note}"


def machine_state() -> list[str]:
    load = os.getloadavg()
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    ruby = subprocess.run(["ruby", "-v"], capture_output=True, text=True).stdout.strip()
    return [
        f"- {platform.platform()}, {os.cpu_count()} cores; Python {platform.python_version()}; {ruby}",
        f"- load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (others' test runs share the machine and Redmine)",
        f"- memory total {meminfo['MemTotal'].strip()}, available {meminfo['MemAvailable'].strip()}",
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes-mb", default="20,4,2")
    args = parser.parse_args()
    info = testbed()
    sender = info["users"]["jsmith"]["mail"]  # a member of helpdesk: Redmine's handler files as jsmith
    config = site_config(info, timeout=60)
    work = config.parent
    m2r = str(Path(sys.executable).parent / "m2r-deliver")
    rdm = ["ruby", info["rdm_mailhandler"], "--url", info["url"], "--key", info["mail_handler_key"],
           "--project", "helpdesk"]
    env = {**os.environ, "HOME": str(work)}
    state = machine_state()
    programs = (
        ("m2r-deliver", [m2r, "--config", str(config)], True),
        ("m2r-deliver, limit known", [m2r, "--config", str(config)], False),
        ("rdm-mailhandler.rb", rdm, False),
    )
    rows = []
    for size_mb in (int(s) for s in args.sizes_mb.split(",")):
        for name, command, fresh_state in programs:
            runs = []
            for number in range(args.runs):
                if fresh_state:  # Redmine's size limit is learnt again, by sending the file
                    shutil.rmtree(work / "state", ignore_errors=True)
                tag = f"{name.split(',')[0]}-{size_mb}mb-{number}-{uuid.uuid4().hex[:8]}"
                mail = build_mail(size_mb * 1024 * 1024, tag, sender)
                result = measure(command, mail, env)
                result["outcome"] = outcome(info, f"bench {tag}")
                if result["rc"]:
                    result["outcome"] += f" (exit {result['rc']}: {result['out'].strip().splitlines()[-1]})"
                runs.append(result)
            rows.append((size_mb, name, len(mail), runs))
    print("| attachment | program | mail size | exit | peak RSS (MB) median [min–max] | wall s median [min–max] | what Redmine got |")
    print("|---|---|---|---|---|---|---|")
    for size_mb, name, mail_size, runs in rows:
        rss = [r["maxrss_mb"] for r in runs]
        wall = [r["wall_s"] for r in runs]
        codes = ",".join(sorted({str(r["rc"]) for r in runs}))
        print(f"| {size_mb} MB | {name} | {mail_size / 1048576:.1f} MB | {codes} | "
              f"{statistics.median(rss):.0f} [{min(rss):.0f}–{max(rss):.0f}] | "
              f"{statistics.median(wall):.2f} [{min(wall):.2f}–{max(wall):.2f}] | {runs[-1]['outcome']} |")
    print()
    print("Machine state at the start:")
    print("\n".join(state))
    print("Machine state at the end:")
    print("\n".join(machine_state()))
    log = (work / "log").read_text().splitlines()
    print()
    print("Last m2r-deliver log line:", re.sub(r"^\S+ ", "", log[-1]) if log else "(none)")
    shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
