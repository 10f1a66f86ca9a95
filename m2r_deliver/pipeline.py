"""The one pass: read → parse → guard → route → deliver → record → exit status."""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass
from typing import BinaryIO, TextIO

from . import guards, log
from .config import Settings
from .deliver import Outcome, execute
from .errors import RedmineUnavailable, classify, exit_status
from .mail import Mail, parse
from .read import read_message
from .route import plan_drop, plan_issue


@dataclass(frozen=True)
class Run:
    """How this process was asked to deliver."""

    dry_run: bool = False
    verbose: bool = False


def deliver(stdin: BinaryIO, stdout: TextIO, stderr: TextIO, settings: Settings, run: Run) -> int:
    started = time.monotonic()
    mail: Mail | None = None
    outcome: Outcome | None = None
    failure = None
    plan = None
    with _deadline(settings):
        try:
            mail = parse(read_message(stdin))
            verdict = guards.decide(mail, settings, record=not run.dry_run)
            plan = (plan_drop(mail, verdict.guard, verdict.reason, verdict.action) if verdict
                    else plan_issue(mail, settings))
            outcome, plan = execute(plan, mail, settings, dry_run=run.dry_run)
            if run.dry_run:
                stdout.write(plan.to_json() + "\n")
        except (Exception, _DeadlineExceeded) as exc:  # nothing may escape to the mail system
            failure = classify(exc)
    line = log.summary(
        msgid=mail.message_id if mail else None,
        sender=(mail.sender.addr if mail and mail.sender else None),
        decision=outcome.decision if outcome else ("tempfail" if failure.temporary else "refused"),
        issue=f"#{outcome.issue_id}" if outcome and outcome.issue_id else None,
        action=plan.action if plan and plan.action == "note" and outcome and outcome.decision == "filed" else None,
        author=outcome.author if outcome else None,
        project=plan.project if plan and plan.action == "create" else None,
        route=plan.route if plan and plan.action == "create" else None,
        guard=plan.guard if plan else None,
        reason=plan.reason if plan and plan.guard else None,
        warnings="; ".join(plan.warnings) if plan and plan.warnings else None,
        fault=failure.fault if failure else None,
        error=failure.reason if failure else None,
        url=outcome.url if outcome else None,
        saved=outcome.saved if outcome else None,
        ms=int((time.monotonic() - started) * 1000),
    )
    log.emit(line, settings, failed=failure is not None, verbose=run.verbose, stderr=stderr)
    return exit_status(failure)


class _DeadlineExceeded(RedmineUnavailable, KeyboardInterrupt):
    """Raised from the alarm: a slow-dripping server must not hold the mail system.
    A KeyboardInterrupt too, so no library's ``except Exception`` swallows it."""


@dataclass
class _deadline:
    settings: Settings

    def __enter__(self):
        if hasattr(signal, "SIGALRM"):
            seconds = int(self.settings.timeout * 6) + 5

            def expire(signum, frame):
                raise _DeadlineExceeded(f"gave up after {seconds} s in all")

            self.previous = signal.signal(signal.SIGALRM, expire)
            signal.alarm(seconds)
        return self

    def __exit__(self, *exc):
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
            signal.signal(signal.SIGALRM, self.previous)
        return False
