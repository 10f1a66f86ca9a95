"""The machine around the shipped examples: ordinary local users, a private dovecot, the
system's Postfix, and Redmine's own notification mail. Everything here listens and sends
on loopback only, and removes what it made."""

from __future__ import annotations

import functools
import hashlib
import imaplib
import io
import json
import mailbox
import os
import pwd
import re
import secrets
import socket
import ssl
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from m2r_deliver.mail import Mail, parse
from m2r_deliver.read import read_message
from support import testbed as testbed_data
from support.paths import ROOT, console_script

EXAMPLES = ROOT / "examples"
#: A Redmine that is down: nothing listens on the discard port, so connecting is refused.
REDMINE_DOWN = "http://127.0.0.1:9"
#: What cron and an MTA give a command: neither ~/bin nor ~/.local/bin.
MINIMAL_PATH = "/usr/bin:/bin"
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
#: The request address examples/procmailrc ships with.
REQUEST_ADDRESS = "request@example.org"

T = TypeVar("T")


class HostError(RuntimeError):
    """The machine around the examples misbehaved (a command failed, a server did not come
    up): an error of the test bed, never a failed expectation about the examples."""


def wait_for(probe: Callable[[], T], what: str, timeout: float = 120) -> T:
    """Poll *probe* until it returns something true; giving up is an error of the test bed."""
    return testbed_data.wait_for(probe, what, timeout, failure=HostError)


def _system_env() -> dict[str, str]:
    return {**os.environ, "PATH": SYSTEM_PATH}


def runs_for_others(program: str) -> bool:
    probe = subprocess.run(["runuser", "-u", "nobody", "--", program, "--version"], capture_output=True,
                           env=_system_env(), timeout=60)
    return probe.returncode == 0


@functools.cache
def program_for_users() -> str:
    """This clone's m2r-deliver as ordinary users can run it. The clone's own venv serves
    when they can reach it; a clone in a closed directory (under /root, say) is installed,
    not linked, into a venv of its own under /var/tmp."""
    if runs_for_others(console_script()):
        return console_script()
    venv = Path("/var/tmp") / f"m2r-e2e-venv-{hashlib.sha256(str(ROOT).encode()).hexdigest()[:12]}"
    python = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable
    if not (venv / "bin" / "python").exists():
        subprocess.run([python, "-m", "venv", str(venv)], check=True, capture_output=True, timeout=300)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    "--force-reinstall", "--no-deps", str(ROOT)], check=True, capture_output=True, timeout=600)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                    str(ROOT)], check=True, capture_output=True, timeout=600)
    venv.chmod(0o755)
    return str(venv / "bin" / "m2r-deliver")


def run_root(*argv: str, stdin: bytes = b"", timeout: float = 120) -> subprocess.CompletedProcess:
    """A system command as root; its output is kept for the error message."""
    proc = subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=_system_env())
    if proc.returncode != 0:
        raise HostError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.decode(errors='replace')}")
    return proc


def start_daemon(*argv: str, log: Path) -> None:
    """A command that forks a server and returns: the server must not hold our pipes."""
    with open(log, "ab") as out:
        status = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=out, timeout=120,
                                env=_system_env()).returncode
    if status != 0:
        raise HostError(f"{' '.join(argv)} exited {status}; see {log}")


class LocalUser:
    """An ordinary account made for one test. Its commands run the way a mail system runs
    them: as the user, with HOME set and a minimal PATH."""

    def __init__(self, name: str, api_key: str):
        run_root("useradd", "--create-home", "--shell", "/bin/sh", "--comment", "m2r-deliver chain test", name)
        entry = pwd.getpwnam(name)
        self.name, self.uid, self.gid, self.home = name, entry.pw_uid, entry.pw_gid, Path(entry.pw_dir)
        self.put(".config/m2r-deliver/api-key", api_key, mode=0o600)

    def remove(self) -> None:
        """The account, its home and its system mailbox."""
        proc = subprocess.run(["userdel", "--remove", self.name], capture_output=True, timeout=60, env=_system_env())
        if self.home.exists():
            raise HostError(f"userdel --remove {self.name} left {self.home}: {proc.stderr.decode(errors='replace')}")

    def put(self, relative: str, content: bytes | str, mode: int = 0o644) -> Path:
        """Write a file in the home, whole or not at all: a program may read it meanwhile."""
        path = self.home / relative
        self.make_dirs(path.parent)
        partial = path.with_name(f".{path.name}.partial")
        partial.write_bytes(content.encode() if isinstance(content, str) else content)
        os.chown(partial, self.uid, self.gid)
        partial.chmod(mode)
        partial.replace(path)
        return path

    def put_example(self, example: str, relative: str, mode: int = 0o644) -> Path:
        """One of the shipped examples, byte for byte."""
        return self.put(relative, (EXAMPLES / example).read_bytes(), mode)

    def make_dirs(self, directory: Path) -> None:
        for parent in reversed([directory, *directory.parents]):
            if parent.is_relative_to(self.home) and not parent.exists():
                parent.mkdir()
                os.chown(parent, self.uid, self.gid)

    def install_m2r_deliver(self, bin_dir: str) -> Path:
        """m2r-deliver on the user's PATH the way the examples expect it: a link in
        *bin_dir* (``bin``, ``.local/bin``) to this clone's program. A program already on
        the mail system's PATH (the Debian package's) is found there, with no link."""
        program = Path(program_for_users())
        if str(program.parent) in MINIMAL_PATH.split(":"):
            return program
        link = self.home / bin_dir / "m2r-deliver"
        self.make_dirs(link.parent)
        link.symlink_to(program)
        os.lchown(link, self.uid, self.gid)
        return link

    def point_at(self, url: str, extra: str = "") -> None:
        """The config at its default place; *url* is the test-bed Redmine, or REDMINE_DOWN.
        The timeout is the program's default: the shared test bed is slow at busy times."""
        self.put(".config/m2r-deliver/config.toml", (
            f'[redmine]\nurl = "{url}"\nkey_file = "{self.home}/.config/m2r-deliver/api-key"\ntimeout = 30\n\n'
            '[issue]\nproject = "helpdesk"\ntracker = "Support"\n\n'
            f'[log]\nsyslog = false\nfile = "{self.home}/m2r-deliver.log"\n\n{extra}'
        ), mode=0o600)

    def run(self, argv: list[str], stdin: bytes = b"", env: dict[str, str] | None = None,
            timeout: float = 120) -> subprocess.CompletedProcess:
        environment = {"HOME": str(self.home), "USER": self.name, "LOGNAME": self.name, "SHELL": "/bin/sh",
                       "PATH": MINIMAL_PATH, **(env or {})}
        return subprocess.run(argv, input=stdin, capture_output=True, timeout=timeout, env=environment,
                              cwd=self.home, user=self.uid, group=self.gid,
                              extra_groups=os.getgrouplist(self.name, self.gid))

    def mailbox(self) -> bytes:
        """The system mailbox, where procmail's $DEFAULT and Postfix's local delivery write."""
        path = Path("/var/mail") / self.name
        return path.read_bytes() if path.exists() else b""

    def maildir(self, relative: str) -> list[bytes]:
        folder = self.home / relative
        return [path.read_bytes() for sub in ("new", "cur") for path in sorted((folder / sub).glob("*"))]

    def log(self) -> str:
        """m2r-deliver's own log: one line per mail it saw."""
        path = self.home / "m2r-deliver.log"
        return path.read_text() if path.exists() else ""


def redmine_notification(mail_dir: str, issue_id: int) -> bytes:
    """Redmine's own notification about *issue_id*, as Redmine wrote it (the test bed
    appends each recipient's mail to one file, each message starting at its Date: header),
    with the line ends a local MTA stores mail with."""
    header = re.compile(rb"^X-Redmine-Issue-Id: %d\r?$" % issue_id, re.MULTILINE)

    def find() -> bytes | None:
        for path in sorted(Path(mail_dir).glob("*")):
            for message in re.split(rb"(?m)^(?=Date: )", path.read_bytes()):
                if message.startswith(b"Date: ") and header.search(message.split(b"\r\n\r\n", 1)[0]):
                    return message
        return None

    return wait_for(find, f"Redmine's notification about issue #{issue_id} in {mail_dir}").replace(b"\r\n", b"\n")


def message_ids(messages: list[bytes]) -> list[str]:
    return [m.group(1).decode() for m in (re.search(rb"(?im)^Message-ID:\s*<([^>]+)>", msg) for msg in messages) if m]


@dataclass(frozen=True)
class Account:
    name: str
    password: str


class Dovecot:
    """A private dovecot, not the system's: POP3 on 995 and IMAP on 993, TLS only, on
    127.0.0.1 and ::1, with a self-signed certificate made for it, and mail stored in
    Maildirs owned by a system user made for it."""

    HOST = "localhost"
    PORTS = (993, 995)

    def __init__(self, workdir: Path, store_user: str):
        self.workdir = workdir
        self.store_user = store_user
        self.cert = workdir / "cert.pem"
        self.config = workdir / "dovecot.conf"
        self.password = secrets.token_urlsafe(12)
        self.mail = workdir / "mail"
        self.log = workdir / "dovecot.log"

    def ports_taken(self) -> list[int]:
        taken = []
        for port in self.PORTS:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    taken.append(port)
        return taken

    def start(self) -> None:
        run_root("useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent", "--shell",
                 "/usr/sbin/nologin", self.store_user)
        store = pwd.getpwnam(self.store_user)
        self.store_ids = (store.pw_uid, store.pw_gid)
        self.workdir.chmod(0o755)  # the mail user reads the certificate from here
        key = self.workdir / "key.pem"
        run_root("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
                 f"/CN={self.HOST}", "-addext", f"subjectAltName=DNS:{self.HOST}",
                 "-keyout", str(key), "-out", str(self.cert))
        key.chmod(0o600)
        self.cert.chmod(0o644)
        self.mail.mkdir()
        os.chown(self.mail, *self.store_ids)
        self.config.write_text(self._config(store.pw_uid))
        start_daemon("dovecot", "-c", str(self.config), log=self.log)
        wait_for(lambda: len(self.ports_taken()) == len(self.PORTS), f"dovecot listening (log: {self.log})", 60)

    def _config(self, first_uid: int) -> str:
        listeners = "\n".join(
            f"service {proto}-login {{\n  inet_listener {proto} {{\n    port = 0\n  }}\n"
            f"  inet_listener {proto}s {{\n    port = {port}\n    ssl = yes\n  }}\n}}"
            for proto, port in (("imap", 993), ("pop3", 995))
        )
        return f"""\
instance_name = m2r-chain-test
base_dir = {self.workdir}/run
state_dir = {self.workdir}/state
log_path = {self.log}
protocols = pop3 imap
listen = 127.0.0.1, ::1
ssl = required
ssl_cert = <{self.cert}
ssl_key = <{self.workdir}/key.pem
disable_plaintext_auth = yes
auth_mechanisms = plain
passdb {{
  driver = static
  args = password={self.password}
}}
userdb {{
  driver = static
  args = uid={self.store_user} gid={self.store_user} home={self.mail}/%u
}}
first_valid_uid = {first_uid}
mail_location = maildir:~/Maildir
{listeners}
"""

    def stop(self) -> None:
        pid_file = self.workdir / "run" / "master.pid"
        if pid_file.exists():
            pid = int(pid_file.read_text().split()[0])
            subprocess.run(["dovecot", "-c", str(self.config), "stop"], capture_output=True, timeout=60,
                           env=_system_env())
            wait_for(lambda: not Path(f"/proc/{pid}").exists(), f"dovecot (pid {pid}) to stop", 60)
        subprocess.run(["userdel", self.store_user], capture_output=True, timeout=60, env=_system_env())

    def account(self) -> Account:
        """A fresh mailbox on the server, as the provider would give the site. (Any name
        logs in with the server's one password: a file of users would be cached.)"""
        return Account(f"request-{secrets.token_hex(4)}", self.password)

    def receive(self, account: Account, message: bytes) -> None:
        """A message arrives in the account's inbox, handed to dovecot itself (IMAP APPEND),
        so that its next POP3 or IMAP session sees it: a file written behind dovecot's back
        into the Maildir was now and then missed by the next session."""
        connection = self._imap(account)
        try:
            status, answer = connection.append("INBOX", None, None, message)
        finally:
            connection.logout()
        if status != "OK":
            raise HostError(f"dovecot refused the message: {answer}")

    def _imap(self, account: Account) -> imaplib.IMAP4_SSL:
        connection = imaplib.IMAP4_SSL(self.HOST, 993, ssl_context=ssl.create_default_context(cafile=self.cert),
                                       timeout=30)
        connection.login(account.name, account.password)
        return connection

    def inbox(self, account: Account) -> tuple[int, int]:
        """(messages on the server, of which not yet seen), asked over IMAP."""
        connection = self._imap(account)
        try:
            connection.select("INBOX", readonly=True)
            counts = tuple(len(connection.search(None, which)[1][0].split()) for which in ("ALL", "UNSEEN"))
        finally:
            connection.logout()
        return counts

    def forget_seen(self, account: Account) -> None:
        """Clear the seen flags: as if fetchmail had died before it could set them."""
        connection = self._imap(account)
        try:
            connection.select("INBOX")
            connection.store("1:*", "-FLAGS", "\\Seen")
        finally:
            connection.logout()


class Postfix:
    """The system's Postfix, used only when it is loopback-only with no relay at all (as
    scripts/setup leaves it). Started here when it was not running, and stopped again."""

    SAFE = {"inet_interfaces": "loopback-only", "default_transport": "error", "relay_transport": "error",
            "relayhost": ""}

    def __init__(self):
        self.started = False

    def unsafe_settings(self) -> list[str]:
        found = run_root("postconf", "-h", *self.SAFE).stdout.decode().splitlines()
        return [f"{name} = {value!r} (wanted {self.SAFE[name]!r})"
                for name, value in zip(self.SAFE, found) if value.strip() != self.SAFE[name]]

    def start(self) -> None:
        if subprocess.run(["postfix", "status"], capture_output=True, env=_system_env()).returncode:
            start_daemon("postfix", "start", log=Path("/dev/null"))
            self.started = True

    def stop(self) -> None:
        if self.started:
            run_root("postfix", "stop")

    def send(self, message: bytes, recipient: str, sender: str) -> None:
        run_root("sendmail", "-i", "-f", sender, "--", recipient, stdin=message)

    def queued_for(self, user: str) -> list[dict]:
        entries = [json.loads(line) for line in run_root("postqueue", "-j").stdout.decode().splitlines() if line]
        return [e for e in entries if any(r["address"].split("@")[0] == user for r in e.get("recipients", []))]

    def flush(self) -> None:
        run_root("postqueue", "-f")

    def discard_queued_for(self, user: str) -> None:
        for entry in self.queued_for(user):
            subprocess.run(["postsuper", "-d", entry["queue_id"]], capture_output=True, env=_system_env())


def running_as(name: str) -> bool:
    """Whether a process of the account is running (a local delivery to it, say)."""
    return subprocess.run(["pgrep", "-u", name], capture_output=True).returncode == 0


def delivered(user: LocalUser, message_id: str) -> list[Mail]:
    """The mails in the account's system mailbox, once the one with *message_id* is
    written whole (procmail, Postfix's mailbox_command here, ends each with a blank line)
    and the local delivery is over."""
    wait_for(lambda: message_id.encode() in user.mailbox() and user.mailbox().endswith(b"\n\n")
             and not running_as(user.name), f"{message_id} in /var/mail/{user.name}", timeout=60)
    return [parse(read_message(io.BytesIO(message.as_bytes()))) for message in mailbox.mbox(f"/var/mail/{user.name}")]
