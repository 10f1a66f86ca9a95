"""Record: one line per message to syslog (facility mail) and/or a log file, and a
readable account on stderr only when asked (-v) or when stderr is a terminal.

Mail systems punish output (Exim bounces a .forward pipe that prints; getmail counts
stderr as failure), so nothing is printed otherwise.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import TextIO

from .config import Settings


def _quote(value: object) -> str:
    text = str(value).replace("\n", " ")
    return f'"{text}"' if (" " in text or '"' in text or not text) else text


def summary(**fields: object) -> str:
    """``key=value`` pairs in a fixed order, quoted where needed: one grep-able line."""
    return " ".join(f"{key}={_quote(value)}" for key, value in fields.items() if value is not None)


def emit(line: str, settings: Settings | None, *, failed: bool = False, verbose: bool = False,
         stderr: TextIO | None = None, log_file: Path | None = None) -> None:
    """Write the summary line where the config says (syslog and *log_file* when there is
    no valid config); never raises."""
    use_syslog = settings.syslog if settings else True
    log_file = settings.log_file if settings else log_file
    if use_syslog:
        try:
            import syslog

            syslog.openlog("m2r-deliver", syslog.LOG_PID, syslog.LOG_MAIL)
            syslog.syslog(syslog.LOG_WARNING if failed else syslog.LOG_INFO, line)
        except OSError:
            pass
    if log_file:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            with open(log_file, "a", encoding="utf-8") as out:
                out.write(f"{stamp} m2r-deliver[{os.getpid()}]: {line}\n")
        except OSError:
            pass
    stream = stderr if stderr is not None else sys.stderr
    if verbose or _is_terminal(stream):
        try:
            print(f"m2r-deliver: {line}", file=stream)
        except OSError:
            pass


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False
