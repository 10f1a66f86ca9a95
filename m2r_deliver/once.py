"""Exactly once: the ledger around deliver. Claim the mail before anything is sent,
record what became of it after, and decide when a failing mail leaves the retry loop for
the quarantine Maildir (exit 0, byte for byte as received).

- A mail already settled is not delivered again ("duplicate of #N").
- A copy being delivered by another process right now is waited for, a bounded time.
- When an earlier attempt may have filed the mail without hearing back (timeout, reset,
  killed), Redmine is asked first: by the marker custom field when the site has one
  (then before every first filing, which also covers other hosts and a lost ledger),
  else by subject and text among the project's issues created since that attempt.
- Temporary failures are retried until ``[state] retry_for`` after the first attempt,
  refusals ``[state] max_attempts`` times; then the mail is quarantined.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from . import log
from .config import Settings
from .errors import Busy, DeliveryError, LedgerDamaged, StateError
from .mailkey import delivery_key
from .ledger import FILE_NAME, SETTLED_STATES, Claim, Ledger, Row
from .maildir import deliver_to_maildir
from .plan import Attempt, Outcome, Plan
from .read import Received
from .states import ClaimVerdict, Decision, RowState
from .valueclass import replace, valueclass

#: Redmine's clock and ours may differ: a search by creation time starts this much earlier.
CLOCK_SLACK = 600.0
#: Pause between two looks at a copy another process is delivering.
POLL = 0.2


def quarantine_dir(settings: Settings) -> Path:
    return settings.state_dir / "quarantine"


def deadline(settings: Settings) -> int:
    """Seconds one delivery may take in all (pipeline's alarm): room for the few requests
    a mail needs, each within the timeout."""
    return int(settings.timeout * 6) + 5


def longest_attempt(settings: Settings) -> float:
    """No attempt runs longer than the deadline; an older one in flight is stale."""
    return deadline(settings) + 60


def begin(received: Received, settings: Settings, *, replay: bool = False) -> "Delivery":
    """Claim the mail in the ledger. Raises StateError (75, nothing filed) when the state
    dir cannot record the claim, Busy when another process keeps it too long."""
    key = delivery_key(received)
    ledger, note = open_ledger(settings)
    try:
        return Delivery(ledger, settings, received, key, _claim(ledger, key, settings, replay), replay, note)
    except BaseException:
        ledger.close()
        raise


def earlier(received: Received, settings: Settings) -> Outcome | None:
    """For a dry run: what became of this mail before, when the ledger settled it; looks
    only, and creates no ledger."""
    if not (settings.state_dir / FILE_NAME).exists():
        return None
    with _open(settings) as ledger:
        row = ledger.get(delivery_key(received))
    return _earlier(row, settings) if row is not None and row.state in SETTLED_STATES else None


def open_ledger(settings: Settings) -> tuple[Ledger, str | None]:
    """The ledger, and a note when a damaged one was set aside.

    A damaged ledger is rebuilt only when the site has a marker field: Redmine then
    vouches for every mail the lost ledger knew (the same case as a host that lost its
    state dir). Without one, starting afresh would file redelivered mail again, so the
    mail waits (75) for the admin.
    """
    try:
        return _open(settings), None
    except LedgerDamaged as damaged:
        if not settings.marker_field:
            raise LedgerDamaged(f"{damaged.reason}; nothing is filed until it is replaced. Move it aside (a new "
                                "ledger starts empty: mail redelivered after that may be filed twice), or set "
                                "[redmine] marker_field so Redmine can vouch for what was filed",
                                path=damaged.path) from None
        aside = move_damaged_ledger_aside(damaged.path)
        return _open(settings), f"damaged ledger set aside as {aside}"


def _open(settings: Settings) -> Ledger:
    return Ledger.open(settings.state_dir, keep_for=settings.keep_for, stale_after=longest_attempt(settings))


def move_damaged_ledger_aside(path: Path) -> Path:
    aside = path.with_name(f"{path.name}.damaged-{time.strftime('%Y%m%dT%H%M%S')}-{os.getpid()}")
    try:
        for suffix in ("-wal", "-shm", ""):
            if Path(f"{path}{suffix}").exists():
                os.replace(f"{path}{suffix}", f"{aside}{suffix}")
    except OSError as exc:
        raise StateError(f"cannot set the damaged ledger {path} aside: {exc.strerror}") from None
    return aside


def _claim(ledger: Ledger, key: str, settings: Settings, replay: bool) -> Claim:
    waited_until = time.monotonic() + settings.timeout
    while True:
        claim = ledger.claim(key, replay=replay)
        if claim.verdict != ClaimVerdict.BUSY:
            return claim
        if time.monotonic() >= waited_until:
            row = claim.row
            since = time.strftime("%H:%M:%S", time.localtime(row.started_at))
            raise Busy(f"process {row.pid} on {row.host} is delivering this mail since {since}; "
                       "its outcome will be in the ledger")
        time.sleep(POLL)


@valueclass(eq=False)
class Delivery:
    """One claimed delivery: what the ledger asks of it, and how to record its end."""

    ledger: Ledger
    settings: Settings
    received: Received
    key: str
    claim: Claim
    replay: bool
    #: What the admin should know about the ledger itself (a damaged one set aside).
    note: str | None = None

    def __post_init__(self):
        row = self.claim.row
        by_marker = bool(self.settings.marker_field)
        unsure = row.unsure_since
        since = unsure - CLOCK_SLACK if unsure is not None else None
        self.attempt = Attempt(
            key=self.key,
            look_first=by_marker or unsure is not None,
            since=since,
            not_these=self.ledger.issues_of_other_mail(self.key, since) if since and not by_marker else frozenset(),
        )

    def own_issue(self, message_id: str) -> int | None:
        """The issue a mail we delivered was filed as (or noted on): a reply to it threads."""
        row = self.ledger.get(f"<{message_id}>")
        return row.issue_id if row is not None and row.state == RowState.FILED else None

    @property
    def settled(self) -> Outcome | None:
        """The earlier outcome, when there is nothing to deliver."""
        if self.claim.verdict != ClaimVerdict.SETTLED:
            return None
        return _earlier(self.claim.row, self.settings)

    def record(self, outcome: Outcome, plan: Plan | None) -> Outcome:
        """Record a success: filed (or found filed), or stopped by a guard, whatever the
        guard did with it. Never raises: the mail is settled whatever the ledger says, so
        a ledger that fails now only costs a look-up on redelivery."""
        try:
            if outcome.decision in (Decision.FILED, Decision.RELAYED, Decision.DUPLICATE):
                self.ledger.settle(self.key, RowState.FILED, issue_id=outcome.issue_id)
            elif plan is not None and plan.guard:
                self.ledger.settle(self.key, RowState.DROPPED, guard=plan.guard)
        except DeliveryError as trouble:
            trouble_note = f"the ledger could not record it: {trouble.reason}"
            return replace(outcome, note=log.join_notes(outcome.note, trouble_note))
        return outcome

    def failed(self, failure: DeliveryError) -> Outcome | None:
        """Record a failed attempt; returns the "quarantined" outcome when the mail leaves
        the retry loop, else None (the mail system keeps it: 75). Never raises: trouble
        recording is added to the failure's reason, and the mail is kept."""
        if self.claim.verdict != ClaimVerdict.GO:
            return None
        try:
            row = self.ledger.fail(self.key, failure, unsure_since=self._unsure_after(failure),
                                   state=RowState.QUARANTINED if self.replay else RowState.FAILED)
            why = None if self.replay else _why_give_up(row, failure, self.settings)
            if why is None:
                return None
            kept = deliver_to_maildir(quarantine_dir(self.settings), self.received)
            self.ledger.settle(self.key, RowState.QUARANTINED, quarantine=str(kept))
        except DeliveryError as trouble:
            failure.reason = f"{failure.reason} (then: {trouble.reason})"
            return None
        return Outcome(Decision.QUARANTINED, note=f"{why}; kept in {kept}")

    def _unsure_after(self, failure: DeliveryError) -> float | None:
        """When an attempt that may have filed the mail began, if one did: the earlier
        one unless this attempt's look cleared it, or this one if it sent and failed."""
        before = None if self.attempt.looked else self.claim.row.unsure_since
        if self.attempt.sent and failure.temporary:
            return before if before is not None else self.claim.row.started_at
        return before

    def close(self) -> None:
        self.ledger.close()


def _why_give_up(row: Row, failure: DeliveryError, settings: Settings) -> str | None:
    if not failure.temporary and row.refusals >= settings.max_attempts:
        return f"refused {row.refusals} times (max_attempts {settings.max_attempts})"
    if failure.temporary and time.time() - row.first_at >= settings.retry_for:
        return f"still failing {_age(time.time() - row.first_at)} after the first attempt (retry_for)"
    return None


def _earlier(row: Row, settings: Settings) -> Outcome:
    if row.state == RowState.FILED:
        return Outcome(Decision.DUPLICATE, row.issue_id, f"{settings.url}/issues/{row.issue_id}",
                       note=f"duplicate of #{row.issue_id}")
    if row.state == RowState.DROPPED:
        return Outcome(Decision.DUPLICATE, note=f"duplicate of a mail dropped by {row.guard}")
    return Outcome(Decision.DUPLICATE, note=f"duplicate of a quarantined mail ({row.quarantine})")


def _age(seconds: float) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"
