"""Mail that says it was sent by a program: RFC 3834's Auto-Submitted, and the older
vendor headers auto-responders set (Microsoft Exchange among them)."""

from __future__ import annotations

import re

from ..config import Settings
from ..mail import Mail

_COMMENT = re.compile(r"\([^()]*\)")
#: X-Auto-Response-Suppress values that only automatic mail carries; DR, NDR, RN and NRN
#: also appear on mail people write (Redmine issue #19558), so they are not signs.
_SUPPRESS_SIGNS = {"all", "oof", "autoreply"}
_NOT_SET = {"", "no", "false", "0"}


def first_token(value: str) -> str:
    """The keyword of a structured header value, with RFC 5322 comments removed:
    ``auto-replied (vacation)`` → ``auto-replied``; ``auto-generated; x=y`` → ``auto-generated``."""
    previous = None
    while previous != value:
        previous, value = value, _COMMENT.sub(" ", value)
    words = re.split(r"[\s;]+", value.strip())
    return words[0].lower() if words else ""


class AutoSubmitted:
    name = "auto_submitted"
    description = "Auto-Submitted other than 'no' (RFC 3834: auto-generated, auto-replied, auto-notified)"
    trust_overrides = True

    def check(self, mail: Mail, settings: Settings) -> str | None:
        for value in mail.header_all("auto-submitted"):
            if first_token(value) not in ("", "no"):
                return f"Auto-Submitted: {' '.join(value.split())}"
        return None


class AutoReply:
    name = "auto_reply"
    description = "an auto-responder's header: X-Autoreply, X-Autorespond, X-Auto-Response-Suppress OOF/AutoReply/All"
    trust_overrides = True

    def check(self, mail: Mail, settings: Settings) -> str | None:
        for header in ("X-Autoreply", "X-Autorespond"):
            value = mail.header(header)
            if value is not None and value.strip().lower() not in _NOT_SET:
                return f"{header}: {value.strip()}"
        for value in mail.header_all("x-auto-response-suppress"):
            if {word.lower() for word in re.split(r"[\s,]+", value.strip())} & _SUPPRESS_SIGNS:
                return f"X-Auto-Response-Suppress: {value.strip()}"
        return None
