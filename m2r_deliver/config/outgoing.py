"""[outgoing], [acknowledge] and [relay]: the settings of the mail the program sends, typed, with
their readers. Defaults are read from the schema; ``from`` is a Python keyword, so its
field is ``from_address``.

The acknowledgement's template is loaded and checked here, when the section is read, so
that a mistake in it is a configuration error before any mail is sent. The outgoing
package is imported for that only when acknowledgements are enabled.
"""

from __future__ import annotations

import email.utils
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..lazy import Pattern
from .schema import ACKNOWLEDGE, OUTGOING, RELAY
from .values import Values
from ..valueclass import valueclass

if TYPE_CHECKING:
    from ..outgoing.templates import Template

#: The shipped templates the default ``template`` falls back to when no such file is next
#: to the config.
FALLBACK_TEMPLATE = "ack.en.txt"
RELAY_FALLBACK_TEMPLATE = "relay.en.txt"
_HOST_PORT = Pattern(r"\[[0-9A-Fa-f:.]+\](?::\d{1,5})?|[^\s:\[\]]+(?::\d{1,5})?")
_PLAIN_ADDRESS = Pattern(r"[^\s<>()@\-\x00-\x1f\x7f][^\s<>()@\x00-\x1f\x7f]*@[^\s<>()@\x00-\x1f\x7f]+")


@valueclass(frozen=True, kw_only=True)
class OutgoingSettings:
    """[outgoing]: how mail leaves, and whose it is."""

    #: The sendmail-compatible program (used unless ``smtp`` is set).
    sendmail: str = str(OUTGOING["sendmail"].value)
    #: ``host:port`` (or ``host``, port 25) of an SMTP server to hand mail to instead.
    smtp: str | None = OUTGOING["smtp"].value
    #: Upgrade the SMTP connection with STARTTLS; a server that does not offer it is refused.
    smtp_starttls: bool = OUTGOING["smtp_starttls"].value
    smtp_user: str | None = OUTGOING["smtp_user"].value
    #: The SMTP password: the file's first line; refused when group or others may read it.
    smtp_password_file: Path | None = OUTGOING["smtp_password_file"].value
    #: ``from``: the From of every mail the program sends; no mail is sent without it.
    from_address: str | None = OUTGOING["from"].value
    #: The envelope sender (``-f``, MAIL FROM), where bounces of our own mail return.
    envelope_sender: str | None = OUTGOING["envelope_sender"].value
    #: Address globs never written to (monitoring systems and other robots that file issues).
    never_to: tuple[str, ...] = tuple(OUTGOING["never_to"].value)
    #: "utf-8", or "iso-2022-jp" for old Japanese clients (a text that ISO-2022-JP cannot
    #: hold is sent as UTF-8).
    charset: str = OUTGOING["charset"].value
    #: Seconds one hand-over may take (the sendmail program's run, each SMTP exchange).
    timeout: float = OUTGOING["timeout"].value


def read_outgoing(v: Values) -> OutgoingSettings:
    sender = v["from"]
    if sender is not None and "@" not in email.utils.parseaddr(sender)[1]:
        v.fail("from", f"no address in {sender!r} (write e.g. \"Helpdesk <request@example.org>\")")
        sender = None
    envelope = v["envelope_sender"]
    if envelope is not None and not (envelope.isascii() and _PLAIN_ADDRESS.fullmatch(envelope.strip())):
        v.fail("envelope_sender", f"not a plain address: {envelope!r} (write e.g. request+bounces@example.org)")
        envelope = None
    smtp = v["smtp"]
    if smtp is not None and not _HOST_PORT.fullmatch(smtp.strip()):
        v.fail("smtp", f"not host:port: {smtp!r} (write e.g. \"localhost:25\" or \"[::1]:587\")")
        smtp = None
    if v["smtp_user"] is not None and v["smtp_password_file"] is None:
        v.fail("smtp_user", "is set but [outgoing] smtp_password_file is not: give the file with the password")
    return OutgoingSettings(
        sendmail=str(v["sendmail"]), smtp=smtp.strip() if smtp else None, smtp_starttls=v["smtp_starttls"],
        smtp_user=v["smtp_user"], smtp_password_file=v["smtp_password_file"], from_address=sender,
        envelope_sender=envelope.strip() if envelope else None, never_to=tuple(v["never_to"]), charset=v["charset"],
        timeout=v["timeout"])


@valueclass(frozen=True, kw_only=True)
class AcknowledgeSettings:
    """[acknowledge]: one mail to the requester of each new issue."""

    enabled: bool = ACKNOWLEDGE["enabled"].value
    #: The template file as configured; a relative name is looked for next to the config file.
    template: Path = ACKNOWLEDGE["template"].value
    #: Seconds: at most one acknowledgement per requester within this period.
    once_per: float = ACKNOWLEDGE["once_per"].value
    #: The template, loaded and checked when acknowledgements are enabled.
    text: Template | None = None


def read_acknowledge(v: Values, outgoing: OutgoingSettings, config_dir: Path | None) -> AcknowledgeSettings:
    enabled = v["enabled"]
    text = None
    if enabled:
        if not outgoing.from_address:
            v.fail("enabled", "is true but [outgoing] from is not set: set outgoing.from, the From of the "
                              "acknowledgement (e.g. \"Helpdesk <request@example.org>\")")
        text = load_template(v, config_dir)
    return AcknowledgeSettings(enabled=enabled, template=v["template"], once_per=v["once_per"], text=text)


def load_template(v: Values, config_dir: Path | None, fallback: str = FALLBACK_TEMPLATE,
                  relay: bool = False) -> Template | None:
    from ..outgoing import templates

    try:
        return templates.load(v["template"], config_dir, key="", fallback=None if v.given("template") else fallback,
                              placeholders=templates.RELAY_PLACEHOLDERS if relay else templates.PLACEHOLDERS)
    except ConfigError as exc:
        v.fail("template", exc.reason)
        return None


@valueclass(frozen=True, kw_only=True)
class RelaySettings:
    """[relay]: staff's public notes mailed to the requester."""

    enabled: bool = RELAY["enabled"].value
    #: Login of the relay account (a watcher of each issue filed for a requester).
    user: str = RELAY["user"].value
    #: Status names whose change alone also sends a short mail.
    statuses: tuple[str, ...] = tuple(RELAY["statuses"].value)
    #: The template file as configured (relative: next to the config file, else shipped).
    template: Path = RELAY["template"].value
    #: Bytes of the files that may go along with one relayed note.
    attachments_max: int = RELAY["attachments_max"].value
    #: The template, loaded and checked when relaying is enabled.
    text: Template | None = None


def read_relay(v: Values, outgoing: OutgoingSettings, config_dir: Path | None = None) -> RelaySettings:
    text = None
    if v["enabled"]:
        if not outgoing.from_address:
            v.fail("enabled", "is true but [outgoing] from is not set: set outgoing.from, the From of the relayed "
                              "mail (e.g. \"Helpdesk <request@example.org>\")")
        text = load_template(v, config_dir, RELAY_FALLBACK_TEMPLATE, relay=True)
    return RelaySettings(enabled=v["enabled"], user=v["user"], statuses=tuple(v["statuses"]), template=v["template"],
                         attachments_max=int(v["attachments_max"]), text=text)
