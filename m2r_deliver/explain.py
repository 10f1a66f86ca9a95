"""A failure to reach or use Redmine, as one sentence that names the fix.

python-requests wraps the cause of a failed connection three layers deep
(``ConnectionError(MaxRetryError(NewConnectionError(ConnectionRefusedError)))``) and its
text buries it at the end; these functions dig the cause out and say which setting to look
at. Pure: no I/O, so ``check`` and the delivery's log line say the same thing.
"""

from __future__ import annotations

import socket
import ssl
from typing import Iterable, Iterator
from urllib.parse import urlsplit

API_KEY_HOW_TO = ("the key is on Redmine's page My account » API access key (Show); the REST API must be on: "
                  "Administration » Settings » API » Enable REST web service")
KEY_FIX = "put the key in the file [redmine] key_file names (or key = …)"


def connection_failure(exc: BaseException) -> str:
    """Why a connection to Redmine failed, and what to check: never cut before the cause."""
    where = _address(exc)
    causes = list(_causes(exc))
    text = " ".join(str(c) for c in causes)
    if any(isinstance(c, ConnectionRefusedError) for c in causes) or "Connection refused" in text:
        return (f"connection refused by {where}: nothing listens at that address "
                "(is Redmine running? is [redmine] url right, port included?)")
    if any(isinstance(c, socket.gaierror) for c in causes) or "NameResolutionError" in text \
            or "Name or service not known" in text or "Temporary failure in name resolution" in text:
        host = urlsplit(_url(exc) or "").hostname or where
        return (f"unknown host {host}: the name does not resolve "
                f"(is the host name in [redmine] url spelt right? does this machine's DNS know it?)")
    if "WRONG_VERSION_NUMBER" in text or "wrong version number" in text:
        return (f"TLS handshake with {where} failed (WRONG_VERSION_NUMBER): the server there speaks plain HTTP, "
                "not HTTPS: use http:// in [redmine] url, or the port where Redmine serves HTTPS")
    if "CERTIFICATE_VERIFY_FAILED" in text or any(isinstance(c, ssl.SSLCertVerificationError) for c in causes):
        return (f"the certificate of {where} is not trusted ({_innermost(causes)}): set [redmine] ca_bundle to the "
                "CA that signed it (--certificate-bundle), or fix the server's certificate chain")
    if any(isinstance(c, ConnectionResetError) for c in causes) or "Connection reset" in text:
        return f"{where} reset the connection ({_innermost(causes)}): Redmine or a proxy in front of it closed it"
    if any(isinstance(c, (TimeoutError, socket.timeout)) for c in causes):
        return f"{where} did not answer in time ({_innermost(causes)}): is Redmine overloaded, or a firewall dropping?"
    return f"{where}: {_innermost(causes)}"


def http_status(status: int | None) -> str | None:
    """The fix for an HTTP status Redmine answered the whole setup with (not one mail)."""
    if status == 401:
        return f"401 Unauthorized: Redmine refused the API key: {API_KEY_HOW_TO}; {KEY_FIX}"
    if status == 404:
        return ("404 Not Found on Redmine's REST API: [redmine] url must be Redmine's base URL (the address of its "
                "home page, e.g. https://redmine.example.org or https://example.org/redmine), not a project's or "
                "an issue's page")
    return None


def unknown_name(what: str, existing: Iterable[str], where: str = "") -> str:
    """*what* (``tracker 'Support'``) is not in Redmine: say which names are."""
    names = sorted(set(existing), key=str.casefold)
    listing = ", ".join(repr(n) for n in names) if names else "none visible to the key's user"
    return f"{what} not found in Redmine{where}; the names that exist: {listing}"


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """*exc* and everything it wraps: args, urllib3's .reason, __cause__, __context__."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [a for a in getattr(current, "args", ()) if isinstance(a, BaseException)]
        todo += [c for c in (getattr(current, "reason", None), current.__cause__, current.__context__)
                 if isinstance(c, BaseException)]


def _innermost(causes: list[BaseException]) -> str:
    """The deepest cause's own words, whole."""
    for cause in reversed(causes):
        text = str(cause).strip()
        if text:
            return f"{type(cause).__name__}: {text}"
    return type(causes[-1]).__name__


def _url(exc: BaseException) -> str | None:
    request = getattr(exc, "request", None)
    return getattr(request, "url", None)


def _address(exc: BaseException) -> str:
    parts = urlsplit(_url(exc) or "")
    if not parts.hostname:
        return "Redmine"
    port = parts.port or (443 if parts.scheme == "https" else 80)
    return f"{parts.scheme}://{parts.hostname}:{port}"
