"""Redmine's own mail: a notification that comes back in must never file or add a note.

A human reply to a notification names Redmine's Message-ID only in References or
In-Reply-To; it is not Redmine's mail and passes. Only the mail's own headers count.
"""

from __future__ import annotations

import re

from ..config import Settings
from ..mail import Mail
from .addresses import first_match

#: The Message-ID Redmine gives its notifications: redmine.issue-7.20261127211428.5@host
#: (older releases end in a hex hash instead of the user id).
REDMINE_MESSAGE_ID = re.compile(r"^redmine\.[a-z0-9_]+-\d+\.\d+(\.[0-9a-f]+)?@", re.IGNORECASE)
#: Of a note (journal): redmine.journal-456.20261127211428.144@host (the tail: the recipient's id).
JOURNAL_MESSAGE_ID = re.compile(r"^redmine\.journal-(\d{1,12})\.\d+(?:\.[0-9a-f]+)?@", re.IGNORECASE)


class RedmineOwnMail:
    name = "redmine_own"
    description = "Redmine's own notifications (X-Mailer: Redmine, X-Redmine-*, its Message-ID or emission address)"
    trust_overrides = False

    def check(self, mail: Mail, settings: Settings) -> str | None:
        if (mail.header("x-mailer") or "").strip().lower() == "redmine":
            return "X-Mailer: Redmine"
        redmine_header = next((name for name, _ in mail.headers if name.startswith("x-redmine-")), None)
        if redmine_header:
            return f"Redmine's header {redmine_header}"
        if mail.message_id and REDMINE_MESSAGE_ID.match(mail.message_id):
            return f"Redmine's Message-ID <{mail.message_id}>"
        sender = first_match([mail.sender.addr if mail.sender else None], settings.guard.redmine_from)
        if sender:
            return f"from Redmine's emission address {sender}"
        return None


def journal_notification(mail: Mail) -> tuple[int, int] | None:
    """(issue, journal) when *mail* is Redmine's notification of a journal: its own
    Message-ID ``redmine.journal-J…`` and ``X-Redmine-Issue-Id: N``. What the journal says
    is read over REST, never from the notification."""
    match = JOURNAL_MESSAGE_ID.match(mail.message_id or "")
    issue = (mail.header("x-redmine-issue-id") or "").strip()
    if not match or not (issue.isascii() and issue.isdigit() and len(issue) <= 12):
        return None
    return int(issue), int(match.group(1))
