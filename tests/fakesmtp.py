"""A small SMTP server on loopback, for fault injection: it answers each command with what
the test asks for (by default as a willing server does) and records what it was sent.
No TLS; AUTH PLAIN and LOGIN only when a password is set."""

from __future__ import annotations

import base64
import socketserver
import threading
from dataclasses import dataclass, field


@dataclass
class Received:
    mail_from: str | None = None
    rcpt_to: list[str] = field(default_factory=list)
    data: bytes = b""
    logins: list[tuple[str, str]] = field(default_factory=list)


class FakeSMTP:
    """*replies* maps a command ("greeting", "ehlo", "mail", "rcpt", "data", "end", "auth")
    to the reply line to give instead of the willing one; "rcpt:<address>" for one
    recipient."""

    def __init__(self, replies: dict[str, str] | None = None, *, password: str | None = None,
                 extensions: tuple[str, ...] = ("8BITMIME",)):
        self.replies = replies or {}
        self.password = password
        self.extensions = extensions + (("AUTH PLAIN LOGIN",) if password else ())
        self.messages: list[Received] = []
        server = self

        class Handler(socketserver.StreamRequestHandler):
            timeout = 10

            def handle(self):
                server._converse(self.rfile, self.wfile)

        self.tcp = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.tcp.daemon_threads = True
        self.port = self.tcp.server_address[1]
        self.thread = threading.Thread(target=self.tcp.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> "FakeSMTP":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.tcp.shutdown()
        self.tcp.server_close()

    def _reply(self, name: str, willing: str) -> str:
        return self.replies.get(name, willing)

    def _converse(self, rfile, wfile) -> None:
        def say(line: str) -> None:
            wfile.write(line.encode() + b"\r\n")
            wfile.flush()

        greeting = self._reply("greeting", "220 fake.example ESMTP")
        say(greeting)
        if not greeting.startswith("2"):
            return
        current = Received()
        while True:
            line = rfile.readline(4096)
            if not line:
                return
            command = line.decode("utf-8", "replace").strip()
            verb = command.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO"):
                reply = self._reply("ehlo", "")
                if reply:
                    say(reply)
                else:
                    lines = ["fake.example", *self.extensions]
                    for line_ in lines[:-1]:
                        say(f"250-{line_}")
                    say(f"250 {lines[-1]}")
            elif verb == "AUTH":
                say(self._auth(command, rfile, say, current))
            elif verb == "MAIL":
                current.mail_from = command.partition(":")[2].strip().strip("<>")
                say(self._reply("mail", "250 2.1.0 Ok"))
            elif verb == "RCPT":
                address = command.partition(":")[2].strip().strip("<>")
                reply = self.replies.get(f"rcpt:{address}", self._reply("rcpt", "250 2.1.5 Ok"))
                if reply.startswith("2"):
                    current.rcpt_to.append(address)
                say(reply)
            elif verb == "DATA":
                reply = self._reply("data", "354 End data with <CR><LF>.<CR><LF>")
                say(reply)
                if reply.startswith("3"):
                    current.data = self._read_data(rfile)
                    end = self._reply("end", "250 2.0.0 Ok: queued")
                    if end.startswith("2"):
                        self.messages.append(current)
                    current = Received(logins=current.logins)
                    say(end)
            elif verb == "RSET":
                current = Received(logins=current.logins)
                say("250 2.0.0 Ok")
            elif verb == "NOOP":
                say("250 2.0.0 Ok")
            elif verb == "QUIT":
                say("221 2.0.0 Bye")
                return
            else:
                say("502 5.5.2 Error: command not recognized")

    def _auth(self, command: str, rfile, say, current: Received) -> str:
        if not self.password:
            return "503 5.5.1 Error: authentication not enabled"
        words = command.split()
        mechanism = words[1].upper() if len(words) > 1 else ""
        if mechanism == "PLAIN":
            blob = words[2] if len(words) > 2 else None
            if blob is None:
                say("334 ")
                blob = rfile.readline().decode().strip()
            _, user, password = base64.b64decode(blob).decode().split("\0")
        elif mechanism == "LOGIN":
            say("334 " + base64.b64encode(b"Username:").decode())
            user = base64.b64decode(rfile.readline().strip()).decode()
            say("334 " + base64.b64encode(b"Password:").decode())
            password = base64.b64decode(rfile.readline().strip()).decode()
        else:
            return "504 5.5.4 Unrecognized authentication type"
        current.logins.append((user, password))
        if password != self.password:
            return "535 5.7.8 Error: authentication failed"
        return self._reply("auth", "235 2.7.0 Authentication successful")

    @staticmethod
    def _read_data(rfile) -> bytes:
        lines = []
        while True:
            line = rfile.readline()
            if not line or line in (b".\r\n", b".\n"):
                break
            lines.append(line[1:] if line.startswith(b"..") else line)
        return b"".join(lines)
