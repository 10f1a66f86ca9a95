"""The settings of the mail the program sends: [outgoing] and [acknowledge], typed.

The configuration loader fills these from the file; each default is written here once.
Field names follow the keys of the file; ``from`` is a Python keyword, so its field is
``from_address``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

SENDMAIL = "/usr/sbin/sendmail"
#: Charsets an outgoing mail's text may be written in.
CHARSETS = ("utf-8", "iso-2022-jp")


@dataclass(frozen=True)
class OutgoingSettings:
    """[outgoing]: how mail leaves, and whose it is."""

    #: The sendmail-compatible program (used unless ``smtp`` is set).
    sendmail: str = SENDMAIL
    #: ``host:port`` (or ``host``, port 25) of an SMTP server to hand mail to instead.
    smtp: str | None = None
    #: Upgrade the SMTP connection with STARTTLS; a server that does not offer it is refused.
    smtp_starttls: bool = True
    smtp_user: str | None = None
    #: The SMTP password: the file's first line; refused when group or others may read it.
    smtp_password_file: Path | None = None
    #: ``from``: the From of every mail the program sends; no mail is sent without it.
    from_address: str | None = None
    #: The envelope sender (``-f``, MAIL FROM), where bounces of our own mail return.
    envelope_sender: str | None = None
    #: The charset of the text: "utf-8", or "iso-2022-jp" for old Japanese clients (a
    #: text that ISO-2022-JP cannot hold is sent as UTF-8).
    charset: str = "utf-8"
    #: Seconds one hand-over may take (the sendmail program's run, each SMTP exchange).
    timeout: float = 60.0


@dataclass(frozen=True)
class AcknowledgeSettings:
    """[acknowledge]: one mail to the requester of each new issue."""

    enabled: bool = False
    #: The template file; a relative name is looked for next to the config file.
    template: Path = Path("ack.txt")
    #: Seconds: at most one acknowledgement per requester within this period.
    once_per: float = 86400.0
