"""Where the suite's inputs are, and what happens when one is missing: in CI (``CI=true``)
a missing capability or corpus fails the run, elsewhere the test is skipped with the reason."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SHARED = ROOT.parent / "shared"
CORPUS = SHARED / "corpus"
TESTBED_DIR = Path(os.environ.get("M2R_TESTBED_DIR", "/var/tmp/m2r-testbed"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("true", "1", "yes")


def unavailable(reason: str) -> None:
    """Skip with *reason*, or fail with it where nothing may be skipped (CI)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing capability fails the run)", pytrace=False)
    pytest.skip(reason)


def corpus_file(*parts: str) -> Path:
    path = CORPUS.joinpath(*parts)
    if not path.exists():
        unavailable(f"shared corpus not present: {path} (tests that read ../shared/corpus need it)")
    return path


def corpus_dir(*parts: str) -> Path:
    """A corpus directory, there and not empty."""
    path = CORPUS.joinpath(*parts)
    if not path.is_dir() or not any(path.iterdir()):
        unavailable(f"shared corpus not present: {path} (tests that read ../shared/corpus need it)")
    return path


def console_script() -> str:
    """The installed entry point next to this interpreter, as a mail system would run it;
    M2R_PROGRAM names another (the Debian package's /usr/bin/m2r-deliver, say)."""
    if os.environ.get("M2R_PROGRAM"):
        return os.environ["M2R_PROGRAM"]
    candidate = Path(sys.executable).parent / "m2r-deliver"
    return str(candidate) if candidate.exists() else shutil.which("m2r-deliver") or "m2r-deliver"
