"""Whole-process time per mail: m2r-deliver filing a request against Redmine's
rdm-mailhandler.rb on the same mail shape and the same local Redmine, and m2r-deliver's
paths that need no Redmine (a dropped bounce, a dropped vacation reply, a redelivered
duplicate); runs interleaved, median of N. ``--drop-only`` leaves Redmine out (no
filing, no rdm-mailhandler.rb): the paths that never talk to it.

    flock /tmp/m2r-testbed.lock .venv/bin/python bench/startup.py [N]
    .venv/bin/python bench/startup.py --drop-only [N]
"""

from __future__ import annotations

import sys
import uuid

from common import SCRIPT, machine_state, median_ms, request_mail, site_config, testbed, timed, timed_cpu


def bounce() -> bytes:
    """A Postfix delivery status notification, each with its own Message-ID: dropped by the
    bounce guard before any network work (the same one twice would be a duplicate)."""
    return BOUNCE.replace(b"<bench-bounce@", f"<bench-bounce.{uuid.uuid4().hex}@".encode())


BOUNCE = (b"Return-Path: <>\r\nFrom: MAILER-DAEMON@mx.example.org (Mail Delivery System)\r\n"
          b"To: request@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
          b"Message-ID: <bench-bounce@mx.example.org>\r\nMIME-Version: 1.0\r\n"
          b"Content-Type: multipart/report; report-type=delivery-status; boundary=B\r\n\r\n"
          b"--B\r\nContent-Type: text/plain\r\n\r\nThe mail could not be delivered.\r\n"
          b"--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx.example.org\r\n\r\n"
          b"Final-Recipient: rfc822; gone@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n--B--\r\n")


def vacation() -> bytes:
    """An out-of-office reply (RFC 3834), each with its own Message-ID."""
    return (f"From: Alice <alice@example.org>\r\nTo: request@example.org\r\nSubject: Out of office\r\n"
            f"Message-ID: <bench-vacation.{uuid.uuid4().hex}@example.org>\r\nAuto-Submitted: auto-replied\r\n"
            "Content-Type: text/plain\r\n\r\nI am away until Monday.\r\n").encode()


#: The floor of any per-process client built on python-redmine: import it, file one issue.
BARE_CREATE = """
import email, sys
from redminelib import Redmine
url, key, project = sys.argv[1:4]
mail = email.message_from_binary_file(sys.stdin.buffer)
Redmine(url, key=key).issue.create(project_id=project, subject=mail["Subject"], description=mail.get_payload())
"""


def main(runs: int, drop_only: bool) -> None:
    info = testbed()
    # Every filed request comes from one sender: the rate limit counts them all but must
    # hold none, so it is set above the run.
    config = site_config(info, f"[guard]\nrate_limit = {2 * runs + 10}\n")
    ours = [str(SCRIPT), "--config", str(config)]
    theirs = ["ruby", info["rdm_mailhandler"], "--url", info["url"], "--key", info["mail_handler_key"],
              "--project", info["project"], "--tracker", "Support"]
    baselines = {"python3 -c pass": [sys.executable, "-c", "pass"], "ruby -e ''": ["ruby", "-e", ""]}
    bare = [sys.executable, "-c", BARE_CREATE, info["url"], info["admin_key"], info["project"]]
    filing = () if drop_only else ("m2r-deliver", "bare python-redmine create", "rdm-mailhandler.rb")
    samples: dict[str, list[float]] = {name: [] for name in (
        *filing, "m2r-deliver, dropped bounce", "m2r-deliver, dropped vacation reply", "m2r-deliver, duplicate",
        *baselines)}
    cpu: dict[str, list[float]] = {name: [] for name in samples}
    if drop_only:
        duplicate = vacation()
    else:
        timed(ours, request_mail(tag="warm-up"))  # first run fills the name cache, as any later mail finds it
        duplicate = request_mail(tag="bench-duplicate")
    timed(ours, duplicate)
    for _ in range(runs):
        for name, command, mail in (("m2r-deliver", ours, request_mail(tag="bench-startup")),
                                    ("bare python-redmine create", bare, request_mail(tag="bench-bare")),
                                    ("rdm-mailhandler.rb", theirs, request_mail(tag="bench-startup")),
                                    ("m2r-deliver, dropped bounce", ours, bounce()),
                                    ("m2r-deliver, dropped vacation reply", ours, vacation()),
                                    ("m2r-deliver, duplicate", ours, duplicate)):
            if name not in samples:
                continue
            ms, cpu_ms, status = timed_cpu(command, mail)
            if status != 0:
                sys.exit(f"{name} exited {status}; is the test-bed up (testbed/redmine-testbed up)?")
            samples[name].append(ms)
            cpu[name].append(cpu_ms)
        for name, command in baselines.items():
            ms, cpu_ms, _ = timed_cpu(command, b"")
            samples[name].append(ms)
            cpu[name].append(cpu_ms)
    print(f"runs: {runs} each, interleaved; machine: {machine_state()}")
    for name, values in samples.items():
        print(f"{name:36} median {median_ms(values):7.1f} ms   min {min(values):7.1f}   max {max(values):7.1f}"
              f"   CPU (user+sys) median {median_ms(cpu[name]):7.1f} ms")
    if not drop_only:
        for other in ("bare python-redmine create", "rdm-mailhandler.rb"):
            wall = median_ms(samples["m2r-deliver"]) / median_ms(samples[other])
            used = median_ms(cpu["m2r-deliver"]) / median_ms(cpu[other])
            print(f"ratio m2r-deliver / {other}: wall {wall:.2f}, CPU {used:.2f}")
    print(f"machine at the end: {machine_state()}")


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if a != "--drop-only"]
    main(int(arguments[0]) if arguments else 15, "--drop-only" in sys.argv[1:])
