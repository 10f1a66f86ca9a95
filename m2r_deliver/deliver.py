"""Deliver: carry out a Plan. A mail a guard stopped is set aside in a Maildir (held, or
kept when dropped) without touching the network; Redmine's notification of a note to
relay is read back by relay.py; any other is filed in Redmine by filing.py. Both are
imported only then, so the drop path never loads the HTTP stack.
"""

from __future__ import annotations

from .config import Settings
from .mail import Mail
from .maildir import keep_stopped
from .plan import Attempt, Outcome, Plan
from .states import Action


def execute(plan: Plan, mail: Mail, settings: Settings, attempt: Attempt, *,
            dry_run: bool = False) -> tuple[Outcome, Plan]:
    """Resolve the plan's names and people and, unless dry-running, file it — unless
    Redmine already has it. Returns the outcome and the plan as carried out, with the ids
    it resolved to."""
    if plan.action in (Action.DROP, Action.HOLD):
        return keep_stopped(plan, mail, settings, dry_run=dry_run), plan
    if plan.action == Action.RELAY:
        from . import relay  # Redmine's notification of a note: read the journal over REST

        return relay.read(plan, mail, settings, attempt, dry_run=dry_run)
    from . import filing  # the HTTP stack loads only here

    return filing.file(plan, mail, settings, attempt, dry_run=dry_run)
