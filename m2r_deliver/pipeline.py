"""The one pass: read → claim → parse → guard → route → deliver → record → exit status
(→ reply: the acknowledgement of a new issue, or a staff note relayed to the requester:
outgoing/stage.py).

The claim (once.begin) comes right after reading, so that every later failure, our own
bugs included, is counted in the ledger and ends in quarantine rather than in a retry
loop without end.
"""

from __future__ import annotations

import signal
import time
from typing import TYPE_CHECKING, BinaryIO, Callable, TextIO

from . import guards, log, once
from .config import Settings
from .deliver import execute
from .errors import DeliveryError, Interrupted, RedmineUnavailable, classify, exit_status
from .mailkey import delivery_key
from .mail import Mail, parse
from .plan import Attempt, Outcome, Plan
from .read import Received, read_message
from .route import plan_issue, plan_stopped
from .states import Action, Decision
from .thread import issue_of_own_message
from .valueclass import replace, valueclass

if TYPE_CHECKING:
    from .outgoing.answered import Owed
    from .outgoing.stage import Reply


@valueclass(frozen=True)
class Run:
    """How this process was asked to deliver."""

    dry_run: bool = False
    verbose: bool = False
    #: Re-delivering from the quarantine: a quarantined mail may be tried again, and a
    #: failure leaves it where it is instead of quarantining it a second time.
    replay: bool = False


@valueclass(frozen=True)
class Result:
    """What one delivery pass came to: its outcome or its failure, and the exit status."""

    outcome: Outcome | None
    failure: DeliveryError | None
    status: int


def deliver(stdin: BinaryIO, stdout: TextIO, stderr: TextIO, settings: Settings, run: Run) -> int:
    return deliver_one(lambda: read_message(stdin), stdout, stderr, settings, run).status


def deliver_one(read: Callable[[], Received], stdout: TextIO, stderr: TextIO, settings: Settings, run: Run) -> Result:
    started = time.monotonic()
    mail: Mail | None = None
    outcome: Outcome | None = None
    failure: DeliveryError | None = None
    plan = delivery = None
    owed: Owed | Reply | None = None  # the acknowledgement of a new issue: owed, or what became of it
    reply: Reply | None = None
    try:
        with _interruptible(settings):
            received = read()
            delivery = None if run.dry_run else once.begin(received, settings, replay=run.replay)
            outcome = delivery.settled if delivery else once.earlier(received, settings) if run.dry_run else None
            if outcome is not None and run.dry_run:
                import json  # a dry run's output only

                stdout.write(json.dumps({"action": outcome.decision, "issue": outcome.issue_id, "url": outcome.url,
                                         "reason": outcome.note}, ensure_ascii=False, indent=2) + "\n")
            if outcome is None:
                mail = parse(received)
                verdict = guards.decide(mail, settings, record=not run.dry_run,
                                        ledger=delivery.ledger if delivery else None)
                own_issue = delivery.own_issue if delivery else issue_of_own_message
                plan = (plan_stopped(mail, verdict, settings) if verdict
                        else plan_issue(mail, settings, own_issue=own_issue))
                attempt = delivery.attempt if delivery else Attempt(delivery_key(received))
                outcome, plan = execute(plan, mail, settings, attempt, dry_run=run.dry_run)
                if run.dry_run:
                    if _acknowledges(settings, outcome, plan, Decision.PLANNED):
                        plan = replace(plan, acknowledgement=_stage().preview(mail, plan, settings))
                    elif plan.relay is not None and outcome.decision == Decision.PLANNED:
                        plan = replace(plan, relay_mail=_stage().preview_relay(mail, plan, settings))
                    stdout.write(plan.to_json() + "\n")
                elif delivery and _acknowledges(settings, outcome, plan, Decision.FILED):
                    owed = _stage().owe(delivery.ledger.db, delivery.key, mail, plan, outcome, settings)
                elif delivery and outcome.decision == Decision.RELAYED:
                    owed, outcome, plan = _stage().owe_relay(delivery.ledger.db, delivery.key, mail, plan, outcome,
                                                             settings)
            elif delivery and (settings.acknowledge.enabled or settings.relay.enabled) and outcome.issue_id:
                owed = _stage().owed(delivery.ledger.db, delivery.key, settings)
    except (Exception, KeyboardInterrupt) as exc:  # nothing may escape to the mail system
        failure = classify(exc)
        outcome = delivery.failed(failure) if delivery else None
    else:
        if delivery and not delivery.settled:
            outcome = delivery.record(outcome, plan)
        if delivery and owed is not None:
            reply = _pay(delivery.ledger.db, owed, settings)
    finally:
        if delivery:
            delivery.close()
    if reply is not None and reply.failure is not None:  # the mail system did not take it: 75, owed
        failure = reply.failure
    line = log.delivery_line(mail, delivery.key if delivery else None, plan, outcome, failure,
                             ledger_note=delivery.note if delivery else None,
                             ms=int((time.monotonic() - started) * 1000),
                             reply=reply.log_fields() if reply is not None else None)
    status = exit_status(failure, None if reply is not None and reply.failure else
                         outcome.decision if outcome else None)
    log.emit(line, settings, failed=failure is not None, verbose=run.verbose, stderr=stderr)
    return Result(outcome, failure, status)


def _acknowledges(settings: Settings, outcome: Outcome, plan: Plan, decision: Decision) -> bool:
    """A new issue filed (or, on a dry run, planned) for a requester: the reply stage's."""
    return settings.acknowledge.enabled and outcome.decision == decision and plan.action == Action.CREATE


def _stage():
    from .outgoing import stage  # only when there is a mail to send: the drop path stays light

    return stage


def _pay(db, owed: Owed | Reply, settings: Settings) -> Reply:
    """The hand-over, under its own net: whatever ends it (SIGTERM, the deadline, a bug)
    leaves the mail owed and becomes the delivery's failure, never a traceback."""
    try:
        with _interruptible(settings):
            return _stage().pay(db, owed, settings)
    except (Exception, KeyboardInterrupt) as exc:
        return owed if isinstance(owed, _stage().Reply) else _stage().unpaid(owed, exc)


class _DeadlineExceeded(RedmineUnavailable, KeyboardInterrupt):
    """Raised from the alarm: a slow-dripping server must not hold the mail system.
    A KeyboardInterrupt too, so no library's ``except Exception`` swallows it."""


@valueclass
class _interruptible:
    """While a mail is being delivered, the alarm (our deadline) and SIGTERM become
    exceptions, so the attempt is recorded and logged before the process ends."""

    settings: Settings

    def __enter__(self):
        self.seconds = once.deadline(self.settings)
        self.previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._terminated)}
        if hasattr(signal, "SIGALRM"):
            self.previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, self._expired)
            signal.alarm(self.seconds)
        return self

    def _expired(self, signum, frame):
        raise _DeadlineExceeded(f"gave up after {self.seconds} s in all")

    def _terminated(self, signum, frame):
        raise Interrupted("stopped by SIGTERM")

    def __exit__(self, *exc):
        if hasattr(signal, "SIGALRM"):
            signal.alarm(0)
        for number, handler in self.previous.items():
            signal.signal(number, handler)
        return False
