"""No secret in any output: every file the test run wrote under pytest's temporary
directory (logs, ledgers, caches, Maildirs, quarantines) and every output it captured
(the tests' stdout, stderr and log, the programs' stdout and stderr, failure reports)
must be free of the test bed's API keys. tests/conftest.py runs the scan once, at the end.
"""

from __future__ import annotations

import json
import os
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import Iterable, Iterator

#: Captured outputs: (test or program, stream, text).
OUTPUTS: list[tuple[str, str, str]] = []
#: Files larger than this are read only this far.
READ_LIMIT = 64 * 1024 * 1024


def known_keys(testbed_json: Path) -> set[str]:
    """The administrator's key and every user's key the test bed made."""
    try:
        info = json.loads(testbed_json.read_text())
    except (OSError, ValueError):
        return set()
    keys = {value for name, value in info.items() if name.endswith("_key") and isinstance(value, str)}
    keys |= {user.get("api_key") for user in (info.get("users") or {}).values() if isinstance(user, dict)}
    return {key for key in keys if isinstance(key, str) and len(key) >= 20}


def leaks(roots: Iterable[Path], outputs: Iterable[tuple[str, str, str]], keys: set[str]) -> list[str]:
    """The files and outputs that hold one of *keys*. A key file itself (a key on its
    first line) is where a key belongs: an input, not an output."""
    wanted = [key.encode() for key in keys]
    found = []
    for root in roots:
        for directory, _, names in os.walk(root):
            for name in names:
                path = Path(directory) / name
                if path.is_symlink() or not path.is_file():
                    continue
                try:
                    with path.open("rb") as file:
                        data = file.read(READ_LIMIT)
                except OSError:
                    continue
                if data.split(b"\n", 1)[0].strip() in wanted:
                    continue
                if any(key in data for key in wanted):
                    found.append(str(path))
    found += [f"{who} {stream}" for who, stream, text in outputs if any(key in text for key in keys)]
    return found


@contextmanager
def recording_subprocess() -> Iterator[None]:
    """Keep the captured stdout and stderr of every subprocess.run of the test run."""
    original = subprocess.run

    def run(*args, **kwargs):
        result = original(*args, **kwargs)
        command = args[0] if args else kwargs.get("args")
        program = command[0] if isinstance(command, (list, tuple)) and command else command
        label = f"run #{len(OUTPUTS) + 1} of {os.path.basename(str(program))[:60]}"  # never its arguments
        for stream in ("stdout", "stderr"):
            text = getattr(result, stream, None)
            if text:
                OUTPUTS.append((label, stream, text if isinstance(text, str) else text.decode("utf-8", "replace")))
        return result

    subprocess.run = run
    try:
        yield
    finally:
        subprocess.run = original
