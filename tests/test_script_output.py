"""The scripts CI runs write their output through the streams they were given. A command
that opens /dev/stdout or /dev/stderr again for writing (`tee /dev/stderr`, `> /dev/stdout`)
truncates the file those streams point to when they are a file — a CI log then loses
everything written before it, the test results included."""

from __future__ import annotations

import re

from support.paths import ROOT

REOPENS = re.compile(r"(?:\btee\b(?![^|;&\n]*\s-a\b)[^|;&\n]*|[^>&0-9]>\s*)/dev/(?:stdout|stderr|fd/[12])\b")


def scripts() -> list:
    found = [ROOT / ".ci" / "run", ROOT / "testbed" / "redmine-testbed"]
    found += [path for path in (ROOT / "scripts").iterdir() if path.is_file()]
    return found


def test_no_script_reopens_its_own_output_for_writing():
    offenders = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
                 for path in scripts()
                 for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1)
                 if not line.lstrip().startswith("#") and REOPENS.search(line)]
    assert offenders == []


def test_the_check_sees_the_shapes_that_truncate():
    for line in ("deb=$(scripts/build-deb | tee /dev/stderr | tail -n 1)", "echo hi > /dev/stdout",
                 "cmd | tee -i /dev/fd/2"):
        assert REOPENS.search(line), line
    for line in ("echo hi >&2", "cmd | tee -a /dev/stderr", "cmd 2>/dev/null", "exec 3>/dev/stderr2"):
        assert not REOPENS.search(line), line
