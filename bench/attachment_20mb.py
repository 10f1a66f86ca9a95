"""Peak memory and wall time for one mail with a big attachment, filed through
m2r-deliver, against uploading the same bytes with curl plus one create, on the same
test-bed Redmine. Optionally Redmine's own rdm-mailhandler.rb too.

    flock /tmp/m2r-testbed.lock .venv/bin/python bench/attachment_20mb.py \\
        [--runs 3] [--sizes 6MiB,20MB,50MB] [--raise-limit] [--rdm]

Each run is one process started as a mail system starts it (the mail on stdin); its peak
memory is the maximum resident set size of that process and its time the wall time from
start to exit, both as /usr/bin/time reports them. The Redmine server's own work is in the
wall time but not in the memory figure.

``--raise-limit`` raises the test bed's ``attachment_max_size`` (a ``rails runner``
one-liner) so that the files are really uploaded, and puts the old value back at the end;
run it under the machine-wide test-bed lock, as above.
Prints a Markdown report (results and the machine's state) on stdout.
"""

from __future__ import annotations

import argparse
import json
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
from contextlib import contextmanager
from email.mime.application import MIMEApplication
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText
from pathlib import Path

import requests
from common import request_mail, site_config, testbed

ROOT = Path(__file__).resolve().parent.parent
REDMINE = Path("/usr/share/redmine")
UNITS = {"MiB": 1 << 20, "MB": 10**6, "KiB": 1 << 10, "KB": 10**3}


def size_of(text: str) -> int:
    number, unit = re.fullmatch(r"(\d+)\s*(MiB|MB|KiB|KB)", text.strip()).groups()
    return int(number) * UNITS[unit]


def build_mail(size: int, tag: str, sender: str) -> tuple[bytes, bytes]:
    """The mail, and the attachment's bytes."""
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
    return msg.as_bytes(), data


def measure(command: list[str], stdin_data: bytes, env: dict[str, str]) -> dict:
    """Run *command* with *stdin_data* on stdin under /usr/bin/time: its exit status, wall
    time, peak RSS and output. (A child forked from this process would inherit this
    process's own high-water mark in its rusage; time(1) is small, so its child's figure
    is the program's own.)"""
    with tempfile.TemporaryFile() as stdin, tempfile.TemporaryFile() as output, \
            tempfile.NamedTemporaryFile(mode="r") as report:
        stdin.write(stdin_data)
        stdin.seek(0)
        status = subprocess.run(["/usr/bin/time", "-f", "%M %e", "-o", report.name, *command], stdin=stdin,
                                stdout=output, stderr=subprocess.DEVNULL, env=env).returncode
        max_kb, wall = report.read().split()[-2:]
        output.seek(0)
        text = output.read().decode(errors="replace")
    return {"rc": status, "wall_s": float(wall), "maxrss_mib": int(max_kb) / 1024, "out": text}


def curl_upload_and_create(info: dict, data: bytes, tag: str) -> dict:
    """The same bytes with curl: one POST /uploads.json, one POST /issues.json with its token."""
    key = ["-H", f"X-Redmine-API-Key: {info['admin_key']}"]
    with tempfile.NamedTemporaryFile(prefix="m2r-bench.") as file:
        file.write(data)
        file.flush()
        upload = measure(["curl", "-sS", "-X", "POST", *key, "-H", "Content-Type: application/octet-stream",
                          "--data-binary", f"@{file.name}", f"{info['url']}/uploads.json?filename=logs.zip"],
                         b"", dict(os.environ))
    token = json.loads(upload["out"])["upload"]["token"]
    issue = {"issue": {"project_id": info["project"], "subject": f"bench {tag}", "description": f"Logs ({tag}).",
                       "uploads": [{"token": token, "filename": "logs.zip", "content_type": "application/zip"}]}}
    create = measure(["curl", "-sS", "-X", "POST", *key, "-H", "Content-Type: application/json",
                      "--data-binary", "@-", f"{info['url']}/issues.json"], json.dumps(issue).encode(),
                     dict(os.environ))
    return {"rc": upload["rc"] or create["rc"], "wall_s": upload["wall_s"] + create["wall_s"],
            "maxrss_mib": max(upload["maxrss_mib"], create["maxrss_mib"]), "out": create["out"]}


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
    note = "; note in description" if "Attachment not filed" in (issue["description"] or "") else ""
    return f"{files}{note}"


def machine_state() -> list[str]:
    load = os.getloadavg()
    meminfo = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines())
    ruby = subprocess.run(["ruby", "-v"], capture_output=True, text=True).stdout.strip()
    return [
        f"- {platform.platform()}, {os.cpu_count()} cores; Python {platform.python_version()}; {ruby}",
        f"- load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} (others' test runs share the machine and Redmine)",
        f"- memory total {meminfo['MemTotal'].strip()}, available {meminfo['MemAvailable'].strip()}",
    ]


def rails_runner(code: str) -> str:
    env = {**os.environ, "X_DEBIAN_SITEID": "default", "RAILS_ENV": "production"}
    done = subprocess.run(["bin/rails", "runner", code], cwd=REDMINE, env=env, capture_output=True, text=True,
                          timeout=300)
    if done.returncode:
        sys.exit(f"rails runner failed: {done.stderr[-500:]}")
    return done.stdout.strip()


@contextmanager
def attachment_limit_kb(kb: int | None):
    """Redmine's attachment_max_size set to *kb* for the duration, then put back."""
    if kb is None:
        yield None
        return
    old = rails_runner(f"puts Setting.attachment_max_size; Setting.attachment_max_size = {int(kb)}").splitlines()[-1]
    try:
        yield old
    finally:
        rails_runner(f"Setting.attachment_max_size = {int(old)}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--sizes", default="6MiB,20MB,50MB")
    parser.add_argument("--raise-limit", action="store_true", help="raise attachment_max_size for the run")
    parser.add_argument("--rdm", action="store_true", help="also run rdm-mailhandler.rb")
    args = parser.parse_args()
    info = testbed()
    sender = info["users"]["jsmith"]["mail"]  # a member of helpdesk: Redmine's handler files as jsmith
    config = site_config(info, timeout=120)
    work = config.parent
    m2r = [str(Path(sys.executable).parent / "m2r-deliver"), "--config", str(config)]
    rdm = ["ruby", info["rdm_mailhandler"], "--url", info["url"], "--key", info["mail_handler_key"],
           "--project", "helpdesk"]
    env = {**os.environ, "HOME": str(work)}
    state = machine_state()
    sizes = [(text, size_of(text)) for text in args.sizes.split(",")]
    rows = []
    with attachment_limit_kb(max(s for _, s in sizes) // 1024 + 1024 if args.raise_limit else None) as old_limit:
        measure(m2r, request_mail(sender, tag="warm-up"), env)  # the name cache is warm, as for any later mail
        small = [measure(m2r, request_mail(sender, tag="bench-small"), env) for _ in range(args.runs)]
        rows.append(("no attachment", "m2r-deliver, request without attachment", len(request_mail(sender)),
                     small, "issue filed"))
        for text, size in sizes:
            programs = [("m2r-deliver", m2r), ("curl: upload + create", None)] + ([("rdm-mailhandler.rb", rdm)]
                                                                                 if args.rdm else [])
            for name, command in programs:
                runs = []
                for number in range(args.runs):
                    tag = f"{name.split(':')[0].split(',')[0]}-{text}-{number}-{uuid.uuid4().hex[:8]}"
                    mail, data = build_mail(size, tag, sender)
                    result = measure(command, mail, env) if command else curl_upload_and_create(info, data, tag)
                    result["outcome"] = outcome(info, f"bench {tag}")
                    runs.append(result)
                rows.append((text, name, len(mail), runs, runs[-1]["outcome"]))
    small_peak = statistics.median(r["maxrss_mib"] for r in small)
    print("| attachment | program | mail size | exit | peak RSS MiB median [min–max] | budget MiB "
          "| wall s median [min–max] | what Redmine got |")
    print("|---|---|---|---|---|---|---|---|")
    for text, name, mail_size, runs, got in rows:
        rss = [r["maxrss_mib"] for r in runs]
        wall = [r["wall_s"] for r in runs]
        codes = ",".join(sorted({str(r["rc"]) for r in runs}))
        budget = f"{small_peak + 2.5 * mail_size / 1048576:.0f}" if name == "m2r-deliver" else ""
        print(f"| {text} | {name} | {mail_size / 1048576:.1f} MiB | {codes} | "
              f"{statistics.median(rss):.0f} [{min(rss):.0f}–{max(rss):.0f}] | {budget} | "
              f"{statistics.median(wall):.2f} [{min(wall):.2f}–{max(wall):.2f}] | {got} |")
    print()
    print(f"Budget: the request's own peak ({small_peak:.0f} MiB) + 2.5 x the mail's size. "
          f"attachment_max_size during the run: {'raised from ' + old_limit + ' KB' if old_limit else 'unchanged'}.")
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
