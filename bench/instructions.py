"""Instructions executed per mail (valgrind's callgrind, user space): a count that does not
depend on what else runs on the machine, unlike wall or CPU time, so two versions can be
compared on a busy machine. Each process runs once under valgrind (about 50 x slower).

    .venv/bin/python bench/instructions.py --drop-only [--python OTHER_VENV_PYTHON ...]
    flock /tmp/m2r-testbed.lock .venv/bin/python bench/instructions.py [--python ...]

Without ``--drop-only`` it also files one request (warm name cache) and runs the bare
python-redmine create of startup.py against the test bed. ``--python`` adds the same
paths for another installation (the code before a change, say), side by side.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

from common import machine_state, request_mail, site_config, testbed
from startup import BARE_CREATE, bounce, vacation


def instructions(command: list[str], stdin: bytes) -> float:
    """Millions of instructions the process executed (its exit status must be 0)."""
    proc = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", *command],
                          input=stdin, capture_output=True)
    found = re.search(rb"Collected : (\d+)", proc.stderr)
    if proc.returncode or not found:
        sys.exit(f"{command[0]} failed under valgrind ({proc.returncode}): {proc.stderr[-500:]!r}")
    return int(found.group(1)) / 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--drop-only", action="store_true", help="no Redmine: the paths that never talk to it")
    parser.add_argument("--python", action="append", default=[], help="another installation's python, side by side")
    args = parser.parse_args()
    if not shutil.which("valgrind"):
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    info = testbed()
    config = site_config(info, "[guard]\nrate_limit = 100\n")
    pythons = [sys.executable, *args.python]
    rows: list[tuple[str, str, float]] = []
    for python in pythons:
        ours = [str(Path(python).parent / "m2r-deliver"), "--config", str(config)]
        duplicate = vacation()
        subprocess.run(ours, input=duplicate, capture_output=True)  # settled: the next one is a duplicate
        paths = [("dropped bounce", ours, bounce()), ("dropped vacation reply", ours, vacation()),
                 ("duplicate", ours, duplicate)]
        if not args.drop_only:
            subprocess.run(ours, input=request_mail(tag="warm-up"), capture_output=True)  # the name cache is warm
            paths.append(("request filed (one HTTP request)", ours, request_mail(tag="bench-instructions")))
        for name, command, mail in paths:
            rows.append((python, f"m2r-deliver, {name}", instructions(command, mail)))
    floors = [("python3 -c pass", [sys.executable, "-c", "pass"], b"")]
    if not args.drop_only:
        bare = [sys.executable, "-c", BARE_CREATE, info["url"], info["admin_key"], info["project"]]
        floors.append(("bare python-redmine create", bare, request_mail(tag="bench-bare")))
    rows += [(sys.executable, name, instructions(command, mail)) for name, command, mail in floors]
    print(f"machine: {machine_state()}")
    print("| python | process | million instructions |")
    print("|---|---|---|")
    for python, name, count in rows:
        print(f"| {python} | {name} | {count:.1f} |")
    shutil.rmtree(config.parent, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
