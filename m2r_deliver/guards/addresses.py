"""Address patterns as operators write them in [guard]: an exact address or a shell glob
(``*@forms.example.org``), compared without regard to case."""

from __future__ import annotations

import fnmatch
from typing import Iterable

from ..config import Settings
from ..mail import Mail


def first_match(addresses: Iterable[str | None], patterns: tuple[str, ...]) -> str | None:
    """The first of *addresses* that one of *patterns* matches."""
    for address in addresses:
        if address and any(fnmatch.fnmatchcase(address.lower(), pattern) for pattern in patterns):
            return address
    return None


def is_trusted(mail: Mail, settings: Settings) -> bool:
    """The From address is one whose automatic or list mail is a request (the web form)."""
    return bool(mail.sender and first_match([mail.sender.addr], settings.guard.trusted_senders))


def local_part(address: str | None) -> str:
    """``mailer-daemon`` for ``MAILER-DAEMON@host`` and for a bare ``MAILER-DAEMON``."""
    address = (address or "").lower()
    return address.rpartition("@")[0] or address
