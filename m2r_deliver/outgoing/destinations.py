"""Destinations: the ways a mail the program writes is handed to the mail system.

One small class per way, one interface: ``send(message, envelope_sender, recipients)``
returns when the mail system has taken the mail, or raises a classified error:
MailSystemUnavailable (not taken now: the delivery is retried, exit 75), MailSystemRefused
(never taken: a 5xx, an impossible recipient), ConfigError (the program is missing, the
host unknown, the password wrong). Recipients are always given explicitly, never read from
the message's headers. Nothing is printed: the other side's words end up in the error.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import ssl
import stat
import subprocess
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Iterator, Protocol, Sequence

from ..errors import ConfigError, DeliveryError, MailSystemRefused, MailSystemUnavailable
from ..config.outgoing import OutgoingSettings

if TYPE_CHECKING:
    import smtplib

#: An address as it may appear on a command line or in an SMTP command: ASCII, no spaces,
#: no controls, no angle brackets, not starting with "-", one "@" with text on both sides.
_ADDRESS = re.compile(r"^[^\s<>()\-@\x00-\x1f\x7f][^\s<>()@\x00-\x1f\x7f]*@[^\s<>()@\x00-\x1f\x7f]+$")
#: sendmail(1) exit statuses (sysexits.h) that mean the configuration is wrong, and that
#: the message or a recipient will never be accepted; every other failure is temporary.
_CONFIG_STATUSES = {64: "EX_USAGE", 77: "EX_NOPERM", 78: "EX_CONFIG"}
_REFUSED_STATUSES = {65: "EX_DATAERR", 67: "EX_NOUSER", 68: "EX_NOHOST"}
_SHOWN = 300  # characters of the other side's words kept in an error


class Destination(Protocol):
    def send(self, message: bytes, envelope_sender: str | None, recipients: Sequence[str]) -> None: ...

    def probe(self) -> str:
        """Check that this way out works without sending anything; a description of it."""
        ...


def for_settings(settings: OutgoingSettings) -> Destination:
    """SMTP when [outgoing] smtp is set, else the sendmail program."""
    if settings.smtp:
        password = read_secret(settings.smtp_password_file, "outgoing.smtp_password_file") \
            if settings.smtp_password_file else None
        if settings.smtp_user and password is None:
            raise ConfigError("smtp_user is set but no smtp_password_file", key="outgoing.smtp_password_file")
        host, port = split_host_port(settings.smtp)
        return SMTP(host, port, starttls=settings.smtp_starttls, user=settings.smtp_user, password=password,
                    timeout=settings.timeout)
    return Sendmail(settings.sendmail, timeout=settings.timeout)


def check_addresses(envelope_sender: str | None, recipients: Sequence[str]) -> None:
    """Refuse what could be read as an option or a second command: a bad envelope sender is
    the configuration's mistake, a bad recipient the mail's."""
    if envelope_sender and not (envelope_sender.isascii() and _ADDRESS.match(envelope_sender)):
        raise ConfigError(f"not a usable envelope sender: {envelope_sender!r}", key="outgoing.envelope_sender")
    if not recipients:
        raise MailSystemRefused("no recipients")
    bad = tuple(r for r in recipients if not (r.isascii() and _ADDRESS.match(r)))
    if bad:
        raise MailSystemRefused(f"not a usable recipient address: {', '.join(map(repr, bad))}", recipients=bad)


class Sendmail:
    """``sendmail -i -f ENVELOPE -- RECIPIENT…``, the message on stdin: the interface of
    Postfix, Exim, sendmail, OpenSMTPD, msmtp and nullmailer. Exit 0 means taken."""

    def __init__(self, program: str, *, timeout: float = 60.0):
        self.program, self.timeout = program, timeout

    def command(self, envelope_sender: str | None, recipients: Sequence[str]) -> list[str]:
        sender = ["-f", envelope_sender] if envelope_sender else []
        return [self.program, "-i", *sender, "--", *recipients]

    def send(self, message: bytes, envelope_sender: str | None, recipients: Sequence[str]) -> None:
        check_addresses(envelope_sender, recipients)
        argv = self.command(envelope_sender, recipients)
        try:  # a session of its own: on a timeout every process it started is stopped
            process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                       start_new_session=True)
        except FileNotFoundError:
            raise ConfigError(f"the sendmail program {self.program} does not exist", key="outgoing.sendmail") from None
        except PermissionError:
            raise ConfigError(f"the sendmail program {self.program} cannot be run (permission denied)",
                              key="outgoing.sendmail") from None
        except OSError as exc:
            raise MailSystemUnavailable(f"cannot run {self.program}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = process.communicate(message, timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _stop(process)
            raise MailSystemUnavailable(f"{self.program} did not finish within {self.timeout:g} s") from None
        except BaseException:
            _stop(process)
            raise
        done = subprocess.CompletedProcess(argv, process.returncode, stdout, stderr)
        if done.returncode == 0:
            return
        said = _shown(done.stderr or done.stdout)
        if done.returncode < 0:
            raise MailSystemUnavailable(f"{self.program} was killed by signal {-done.returncode}{said}")
        what = f"{self.program} exited {done.returncode}"
        if done.returncode in _CONFIG_STATUSES:
            raise ConfigError(f"{what} ({_CONFIG_STATUSES[done.returncode]}){said}", key="outgoing.sendmail")
        if done.returncode in _REFUSED_STATUSES:
            raise MailSystemRefused(f"{what} ({_REFUSED_STATUSES[done.returncode]}){said}",
                                    recipients=tuple(recipients))
        raise MailSystemUnavailable(f"{what}{said}")

    def probe(self) -> str:
        path = Path(self.program)
        if not path.is_file():
            raise ConfigError(f"the sendmail program {self.program} does not exist", key="outgoing.sendmail")
        if not os.access(path, os.X_OK):
            raise ConfigError(f"the sendmail program {self.program} cannot be run (not executable)",
                              key="outgoing.sendmail")
        return f"sendmail program {self.program}"


def _stop(process: subprocess.Popen) -> None:
    """Kill the program and whatever it started, and collect it."""
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        process.kill()
    process.communicate()


class SMTP:
    """An SMTP server (a smarthost, or the local MTA's port 25): STARTTLS when asked,
    AUTH when a user is set."""

    def __init__(self, host: str, port: int = 25, *, starttls: bool = True, user: str | None = None,
                 password: str | None = None, timeout: float = 60.0, tls: ssl.SSLContext | None = None):
        self.host, self.port, self.starttls = host, port, starttls
        self.user, self.password, self.timeout = user, password, timeout
        self.tls = tls

    def __repr__(self) -> str:  # never the password
        return f"SMTP({self.host!r}, {self.port}, starttls={self.starttls}, user={self.user!r})"

    def send(self, message: bytes, envelope_sender: str | None, recipients: Sequence[str]) -> None:
        import smtplib

        check_addresses(envelope_sender, recipients)
        with _smtp_errors(self):
            with self._session() as session:
                refused = session.sendmail(envelope_sender or "", list(recipients), crlf(message))
            if refused:  # some recipients taken, some not
                raise smtplib.SMTPRecipientsRefused(refused)

    def probe(self) -> str:
        with _smtp_errors(self):
            with self._session() as session:
                session.noop()
        secured = " with STARTTLS" if self.starttls else ""
        login = f" as {self.user}" if self.user else ""
        return f"SMTP server {self.host}:{self.port}{secured}{login}"

    def _session(self) -> smtplib.SMTP:
        import smtplib

        session = smtplib.SMTP(self.host, self.port, timeout=self.timeout)
        try:
            session.ehlo()
            if self.starttls:
                if not session.has_extn("starttls"):
                    raise ConfigError(f"{self.host}:{self.port} does not offer STARTTLS (set smtp_starttls = "
                                      "false to send without it)", key="outgoing.smtp_starttls")
                session.starttls(context=self.tls or ssl.create_default_context())
                session.ehlo()
            if self.user:
                session.login(self.user, self.password or "")
        except BaseException:
            session.close()
            raise
        return session


@contextmanager
def _smtp_errors(server: SMTP) -> Iterator[None]:
    """smtplib's and the network's exceptions, classified; ours and interruptions pass."""
    try:
        yield
    except DeliveryError:
        raise
    except Exception as exc:
        raise _classified(exc, f"{server.host}:{server.port}") from None


def _classified(exc: Exception, where: str) -> Exception:
    import smtplib

    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = {address: code for address, (code, _) in exc.recipients.items()}
        said = "; ".join(f"{address}: {code} {_text(reply)}" for address, (code, reply) in exc.recipients.items())
        if any(400 <= code < 500 for code in codes.values()):
            return MailSystemUnavailable(f"{where} refused for now: {said}")
        return MailSystemRefused(f"{where} refused: {said}", recipients=tuple(codes))
    if isinstance(exc, smtplib.SMTPAuthenticationError):
        return ConfigError(f"{where} refused the login: {exc.smtp_code} {_text(exc.smtp_error)}",
                           key="outgoing.smtp_user")
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        return ConfigError(f"{where}: {exc}", key="outgoing.smtp_user")
    if isinstance(exc, smtplib.SMTPResponseException):
        said = f"{where} answered {exc.smtp_code} {_text(exc.smtp_error)}"
        if exc.smtp_code < 500:
            return MailSystemUnavailable(said)
        if isinstance(exc, smtplib.SMTPSenderRefused):
            return ConfigError(f"{said} to the envelope sender {exc.sender}", key="outgoing.envelope_sender")
        if isinstance(exc, (smtplib.SMTPConnectError, smtplib.SMTPHeloError)):
            return ConfigError(f"{said}: it does not serve this client", key="outgoing.smtp")
        return MailSystemRefused(said)
    if isinstance(exc, socket.gaierror) and exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", None)):
        return ConfigError(f"unknown host in {where}", key="outgoing.smtp")
    if isinstance(exc, ssl.SSLCertVerificationError):
        return ConfigError(f"{where}: the server's certificate is not trusted ({exc.verify_message})",
                           key="outgoing.smtp")
    if isinstance(exc, (OSError, smtplib.SMTPException)):  # refused, reset, timed out, closed early
        return MailSystemUnavailable(f"{where}: {exc.__class__.__name__}: {exc}")
    return exc


def crlf(message: bytes) -> bytes:
    """SMTP's line ends (smtplib sends bytes as they are, and servers refuse bare LF)."""
    return b"".join(line + b"\r\n" for line in message.splitlines())


def _text(reply: bytes | str) -> str:
    text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
    return " ".join(text.split())[:_SHOWN]


def _shown(output: bytes) -> str:
    text = _text(output or b"")
    return f": {text}" if text else ""


def split_host_port(value: str) -> tuple[str, int]:
    """``host``, ``host:port``, ``[v6 address]:port``."""
    text = value.strip()
    match = re.fullmatch(r"\[([0-9A-Fa-f:.]+)\](?::(\d+))?|([^\s:\[\]]+)(?::(\d+))?", text)
    if not match:
        raise ConfigError(f"not host:port: {value!r}", key="outgoing.smtp")
    host = match.group(1) or match.group(3)
    port = int(match.group(2) or match.group(4) or 25)
    if not 0 < port < 65536:
        raise ConfigError(f"port out of range: {value!r}", key="outgoing.smtp")
    return host, port


def read_secret(path: Path, key: str) -> str:
    """The first line of a secret file, refused when group or others may read it. The mode
    is read from the opened file, so it is the file that was read."""
    path = Path(os.path.expanduser(str(path)))
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}", key=key) from None
    with os.fdopen(fd, "rb") as file:
        mode = os.fstat(file.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ConfigError(f"{path}: group or others may read it (mode {stat.S_IMODE(mode):04o}); "
                              f"run: chmod 600 {path}", key=key)
        first = file.readline(4096)
    try:
        secret = first.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8", key=key) from None
    if not secret:
        raise ConfigError(f"{path}: the first line is empty", key=key)
    return secret
