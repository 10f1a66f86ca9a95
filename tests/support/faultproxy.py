"""A loopback HTTP proxy in front of the real Redmine that misbehaves on request, for the
exactly-once fault tests. Only the request that files is tampered with — the one that
creates an issue (POST …/issues.json, target "create") or the one that adds a note
(PUT …/issues/N.json, target "note"); everything else passes through.

Modes (set ``proxy.mode`` between deliveries):
- ``pass``: forward everything;
- ``down``: reset every connection before reading it (Redmine unreachable);
- ``drop``: forward the request, let Redmine file it, then close the connection
  without answering (the answer was lost);
- ``hold``: forward the request, then keep the client waiting without an answer until
  the proxy stops (a server that hangs after saving);
- ``error-after``: forward the request, then answer 500 instead of Redmine's answer;
- ``error-first``: answer 500 to the first such request without forwarding it, then pass.
"""

from __future__ import annotations

import http.client
import re
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade", "host"}


def _creates_an_issue(method: str, path: str) -> bool:
    return method == "POST" and path.split("?")[0].endswith("/issues.json")


def _adds_a_note(method: str, path: str) -> bool:
    return method == "PUT" and re.search(r"/issues/\d+\.json$", path.split("?")[0]) is not None


TARGETS = {"create": _creates_an_issue, "note": _adds_a_note}


class FaultProxy:
    def __init__(self, upstream: str, target: str = "create"):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port or 80)
        self.mode = "pass"
        self._files = TARGETS[target]
        #: (method, path, what happened) for every request seen.
        self.seen: list[tuple[str, str, str]] = []
        #: Set once Redmine has answered a forwarded filing request (the issue or note is saved).
        self.posted = threading.Event()
        self.stopping = threading.Event()
        self._errored_once = False
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self):
                proxy._serve(self)

            do_GET = do_POST = do_PUT = do_DELETE = _handle

            def log_message(self, *args):
                pass

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FaultProxy":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopping.set()
        self.server.shutdown()
        self.server.server_close()

    def filings(self) -> list[tuple[str, str, str]]:
        """The requests seen that file (the target's), with what happened to each."""
        return [entry for entry in self.seen if self._files(entry[0], entry[1])]

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        mode, method, path = self.mode, handler.command, handler.path
        if mode == "down":
            self.seen.append((method, path, "reset"))
            _reset(handler.connection)
            handler.close_connection = True
            return
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        tampered = self._files(method, path) and mode != "pass"
        if tampered and mode == "error-first" and not self._errored_once:
            self._errored_once = True
            self.seen.append((method, path, "500 without forwarding"))
            _answer(handler, 500, b"", "text/plain")
            return
        status, headers, data = self._forward(method, path, handler.headers, body)
        if not tampered or mode == "error-first":
            self.seen.append((method, path, f"{status} forwarded"))
            _answer(handler, status, data, headers.get("Content-Type", "application/json"))
            return
        self.seen.append((method, path, f"{status} from Redmine, then {mode}"))
        self.posted.set()
        if mode == "error-after":
            _answer(handler, 500, b"", "text/plain")
        elif mode == "hold":
            self.stopping.wait()
            handler.close_connection = True
        else:  # drop
            _reset(handler.connection)
            handler.close_connection = True

    def _forward(self, method, path, headers, body):
        connection = http.client.HTTPConnection(*self.upstream, timeout=120)
        try:
            connection.request(method, path, body=body,
                               headers={k: v for k, v in headers.items() if k.lower() not in HOP_BY_HOP})
            response = connection.getresponse()
            return response.status, dict(response.getheaders()), response.read()
        finally:
            connection.close()


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a connection this proxy reset on purpose is no error worth printing


def _answer(handler: BaseHTTPRequestHandler, status: int, data: bytes, content_type: str) -> None:
    handler.send_response(status)
    handler.send_header("Content-Type", content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)


def _reset(connection: socket.socket) -> None:
    """Close with RST rather than FIN: what a crashed peer or a middlebox does."""
    try:
        connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        connection.close()
    except OSError:
        pass
