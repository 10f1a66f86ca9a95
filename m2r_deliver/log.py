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
from .errors import DeliveryError
from .mail import Mail
from .plan import Outcome, Plan
from .sinks import is_terminal, to_syslog
from .states import Action, Decision


def escape(value: object) -> str:
    """One field value that no mail content can break out of: backslash and double quote
    escaped, every character that is not printable (line ends, control characters, the
    lone surrogates that stand for raw 8-bit bytes) written as a backslash escape; quoted
    when it holds a space or an "=" (or is empty), so ``decision=filed`` in a Message-ID
    stays inside its field."""
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    if not text.isprintable():
        text = "".join(ch if ch.isprintable() else _escaped(ch) for ch in text)
    return f'"{text}"' if (" " in text or "=" in text or not text) else text


_NAMED_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escaped(ch: str) -> str:
    return _NAMED_ESCAPES.get(ch) or ch.encode("unicode_escape", "backslashreplace").decode("ascii")


def summary(**fields: object) -> str:
    """``key=value`` pairs in a fixed order, quoted where needed: one grep-able line."""
    return " ".join(f"{key}={escape(value)}" for key, value in fields.items() if value is not None)


def delivery_line(mail: Mail | None, key: str | None, plan: Plan | None, outcome: Outcome | None,
                  failure: DeliveryError | None, *, ledger_note: str | None, ms: int,
                  reply: dict[str, object] | None = None) -> str:
    """The summary line of one delivery, from what each stage returned (None: the pass
    did not get that far). *key*: the delivery key, when the ledger was asked. *reply*:
    the acknowledgement's fields (``ack=``, ``to=``, ``ack_rule=``, ``ack_reason=``,
    ``ack_msgid=``) or a relayed note's (``to=``, ``relay=``, ``relay_msgid=`` …), after
    every other field but ``ms``. A notification of a journal names it (``journal=``)."""
    by_msgid = key is not None and key.startswith("<")
    filed = outcome is not None and outcome.decision == Decision.FILED
    created = plan is not None and plan.action == Action.CREATE
    if outcome:
        decision = outcome.decision
    else:
        decision = Decision.TEMPFAIL if failure is None or failure.temporary else Decision.REFUSED
    return summary(
        # A duplicate is answered from the ledger before parsing: its key is the Message-ID.
        msgid=mail.message_id if mail else (key[1:-1] if key and by_msgid else None),
        key=key if key and not by_msgid else None,
        sender=(mail.sender.addr if mail and mail.sender else None),
        decision=decision,
        issue=f"#{outcome.issue_id}" if outcome and outcome.issue_id else None,
        journal=plan.journal_id if plan else None,
        action=plan.action if plan and plan.action in (Action.NOTE, Action.BOUNCE_NOTE) and filed else None,
        author=outcome.author if outcome else None,
        project=plan.project if plan and created else None,
        route=plan.route if plan and created else None,
        guard=plan.guard if plan else None,
        reason=plan.reason if plan and plan.guard else None,
        warnings="; ".join(plan.warnings) if plan and plan.warnings else None,
        fault=failure.fault if failure else None,
        error=failure.reason if failure else None,
        note=join_notes(outcome.note if outcome else None, ledger_note),
        **dict(outcome.changed if outcome else ()),
        url=outcome.url if outcome else None,
        saved=outcome.saved if outcome else None,
        **(reply or {}),
        ms=ms,
    )


def join_notes(*notes: str | None) -> str | None:
    return "; ".join(n for n in notes if n) or None


def emit(line: str, settings: Settings | None, *, failed: bool = False, verbose: bool = False,
         stderr: TextIO | None = None, log_file: Path | None = None) -> None:
    """Write the summary line where the config says (syslog and *log_file* when there is
    no valid config); never raises."""
    use_syslog = settings.syslog if settings else True
    log_file = settings.log_file if settings else log_file
    if use_syslog:
        to_syslog(line, failed=failed)
    if log_file:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
            with open(log_file, "a", encoding="utf-8") as out:
                out.write(f"{stamp} m2r-deliver[{os.getpid()}]: {line}\n")
        except (OSError, ValueError):
            pass
    stream = stderr if stderr is not None else sys.stderr
    if verbose or is_terminal(stream):
        try:
            print(f"m2r-deliver: {line}", file=stream)
        except (OSError, ValueError):
            pass


def quiet_libraries(*names: str) -> None:
    """Keep libraries' own log records (those of *names*, or of every logger when none is
    named) from stderr, where Python's logging prints them when nothing is configured and
    where some mail systems count any output as a failed delivery. Called where such a
    library is loaded, so mail that loads none never imports logging."""
    import logging

    for name in names or ("",):
        logger = logging.getLogger(name)
        if not any(isinstance(handler, logging.NullHandler) for handler in logger.handlers):
            logger.addHandler(logging.NullHandler())
