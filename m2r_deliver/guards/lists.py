"""Mail sent to many: bulk precedence, mailing-list headers, and the robot senders that
RFC 5230's vacation responders (and Dovecot Pigeonhole) never answer.

The original setup's web form posts through a mailing list, so these are exactly the guards
that [guard] trusted_senders may override.
"""

from __future__ import annotations

import fnmatch

from ..config import Settings
from ..mail import Mail
from .addresses import local_part
from .automatic import first_token

#: RFC 2919 and RFC 2369 list headers.
LIST_HEADERS = ("list-id", "list-post", "list-help", "list-subscribe", "list-unsubscribe", "list-owner",
                "list-archive")
#: Local parts of list servers and their administrative addresses.
ROBOT_LOCAL_PARTS = ("mailer-daemon", "listserv", "majordomo", "owner-*", "*-request")


class Bulk:
    name = "bulk"
    description = "Precedence: bulk or junk"
    trust_overrides = True

    def check(self, mail: Mail, settings: Settings) -> str | None:
        precedence = first_token(mail.header("precedence") or "")
        return f"Precedence: {precedence}" if precedence in ("bulk", "junk") else None


class MailingList:
    name = "mailing_list"
    description = "mailing-list mail: List-Id or another List-* header, or Precedence: list"
    trust_overrides = True

    def check(self, mail: Mail, settings: Settings) -> str | None:
        header = next((name for name in LIST_HEADERS if mail.header(name) is not None), None)
        if header:
            return f"mailing-list header {header.title()}"
        if first_token(mail.header("precedence") or "") == "list":
            return "Precedence: list"
        return None


class DaemonSender:
    name = "daemon_sender"
    description = "sent by a mail or list robot (MAILER-DAEMON, LISTSERV, majordomo, owner-*, *-request)"
    trust_overrides = True

    def check(self, mail: Mail, settings: Settings) -> str | None:
        """The envelope sender, as vacation responders read it; the From address when
        the mail system passed no envelope sender."""
        sender = mail.envelope_sender or (mail.sender.addr if mail.sender else None)
        local = local_part(sender)
        robot = next((pattern for pattern in ROBOT_LOCAL_PARTS if fnmatch.fnmatchcase(local, pattern)), None)
        return f"robot sender {sender}" if robot else None
