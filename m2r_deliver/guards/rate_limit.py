"""The per-sender circuit breaker: at most [guard] rate_limit mails from one sender are
filed within rate_window seconds; the next is held in a Maildir for a person to look at,
never dropped. A loop that slipped past every other guard stops here.

The count lives in the ledger's file (one row per admitted mail and sender, pruned to
the window), in the delivery's own connection: one open per mail. Each decision is one
``BEGIN IMMEDIATE`` transaction, so concurrent deliveries count right. A retry of a
mail already admitted (Redmine was down) is not counted twice.
"""

from __future__ import annotations

from ..config import Settings
from ..ledger import Ledger
from ..mail import Mail
from ..mailkey import delivery_key


class RateLimit:
    name = "rate_limit"
    description = "more than [guard] rate_limit mails from one sender within rate_window seconds: held, not dropped"
    trust_overrides = True

    def admit(self, mail: Mail, settings: Settings, *, record: bool = True, ledger: Ledger | None = None) -> str | None:
        """None when the mail may be filed (counted, when *record*); else why it is held.
        Counted in *ledger*, the delivery's open ledger (else the state dir's is opened).
        Without *record* (a dry run) nothing is created or written."""
        limit, window = settings.guard.rate_limit, settings.guard.rate_window
        if not limit:
            return None
        sender = (mail.sender.addr if mail.sender else None) or mail.envelope_sender or ""
        message = mail.message_id or delivery_key(mail.received)
        own = None
        if ledger is None:
            own = ledger = (Ledger.open(settings.state_dir, keep_for=settings.keep_for, stale_after=settings.timeout)
                            if record else Ledger.read_only(settings.state_dir))
            if ledger is None:  # a dry run before any state exists
                return None
        try:
            count = ledger.admit(sender, message, limit=limit, window=window, record=record)
        finally:
            if own is not None:
                own.close()
        if count is None:
            return None
        return f"{count} mails from {sender or '(no sender)'} within {window:g} s (rate_limit = {limit})"
