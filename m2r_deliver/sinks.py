"""Where the program's own words may go: a terminal (only when one is there: a mail
system punishes output) and syslog (facility mail). Standard library only, so that
entry.py's hooks can use it at any moment of the start-up."""

from __future__ import annotations


def is_terminal(stream) -> bool:
    """Whether *stream* is a terminal; False for None, a closed stream or no descriptor."""
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


def to_syslog(line: str, *, failed: bool = False) -> None:
    """*line* to syslog as ``m2r-deliver[PID]``, facility mail; never raises."""
    try:
        import syslog

        syslog.openlog("m2r-deliver", syslog.LOG_PID, syslog.LOG_MAIL)
        syslog.syslog(syslog.LOG_WARNING if failed else syslog.LOG_INFO, line)
    except (OSError, ValueError):  # ValueError: a NUL or an unencodable character
        pass
