"""Not addressed to us: a shared mailbox receives more than requests. With [guard]
catch_addresses set, mail that names none of them as a recipient is left alone."""

from __future__ import annotations

from ..config import Settings
from ..mail import Mail
from .addresses import first_match


class NotAddressed:
    name = "not_addressed"
    description = "names none of [guard] catch_addresses in To, Cc, Delivered-To or X-Original-To"
    trust_overrides = False

    def check(self, mail: Mail, settings: Settings) -> str | None:
        catch = settings.guard.catch_addresses
        if not catch or first_match(mail.recipients, catch):
            return None
        more = len(mail.recipients) - 3
        shown = ", ".join(mail.recipients[:3]) + (f" and {more} more" if more > 0 else "")
        return f"addressed to none of the catch addresses ({shown or 'no recipients'})"
