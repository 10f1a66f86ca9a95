"""The connection: python-redmine behind an enforced timeout, and every network or HTTP
failure translated into one of our exception classes."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Iterator

import requests
from redminelib import Redmine, exceptions as rx
from redminelib.engines.sync import SyncEngine

from .. import explain
from ..config import Settings
from ..errors import ConfigError, RedmineRefused, RedmineUnavailable
from ..log import quiet_libraries

quiet_libraries()  # the HTTP stack has loaded logging: no library's warning may reach stderr


class _TimeoutEngine(SyncEngine):
    """python-redmine 2.5.0 drops ``requests={'timeout': …}``; this engine applies it.
    Before 2.5 python-redmine sends the key in the query string, where access logs and
    error texts show it; this engine sends it in the header, as 2.5 does."""

    def __init__(self, **options):
        super().__init__(**options)
        key = self.session.params.pop("key", None)
        if key is not None:
            self.session.headers["X-Redmine-API-Key"] = key

    def request(self, method, url, headers=None, params=None, data=None):
        kwargs = self.construct_request_kwargs(method, headers, params, data)
        kwargs["timeout"] = self.requests["timeout"]
        return self.process_response(self.session.request(method, url, **kwargs))


@contextmanager
def translated_errors(doing: str, *, acting: bool = False) -> Iterator[None]:
    """Turn whatever python-redmine or requests raise into one of our classes.

    *acting*: the request acts as a mail's sender (X-Redmine-Switch-User), so a 403
    means "this user may not", a refusal of the mail, not a broken setup.
    """
    try:
        yield
    except rx.ForbiddenError:
        if acting:
            raise RedmineRefused(f"{doing}: 403 Forbidden for the user acted as", status=403) from None
        raise RedmineUnavailable(f"{doing}: 403 Forbidden: REST API disabled, "
                                 "or the key's user may not do this") from None
    except requests.Timeout as exc:
        raise RedmineUnavailable(f"{doing}: no answer within the timeout ({type(exc).__name__})") from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:  # SSLError too
        raise RedmineUnavailable(f"{doing}: connection failed: {explain.connection_failure(exc)}") from None
    except requests.RequestException as exc:
        raise RedmineUnavailable(f"{doing}: {type(exc).__name__}: {_short(exc)}") from None
    except rx.AuthError:
        raise RedmineUnavailable(f"{doing}: {explain.http_status(401)}") from None
    except rx.ConflictError:
        raise RedmineUnavailable(f"{doing}: 409 Conflict") from None
    except rx.ServerError:
        raise RedmineUnavailable(f"{doing}: 500 Internal Server Error") from None
    except rx.JSONDecodeError:
        raise RedmineUnavailable(f"{doing}: the answer was not Redmine's JSON (a proxy's error page?)") from None
    except rx.HTTPProtocolError:
        raise ConfigError(f"{doing}: Redmine redirects between http and https: fix [redmine] url") from None
    except rx.ResourceNotFoundError:
        raise RedmineRefused(f"{doing}: 404 Not Found", status=404) from None
    except rx.ImpersonateError:
        raise RedmineRefused(f"{doing}: 412: the user to act as is unknown or locked", status=412) from None
    except rx.RequestEntityTooLargeError:
        raise RedmineRefused(f"{doing}: 413 Request Entity Too Large", status=413) from None
    except rx.ValidationError as exc:
        raise RedmineRefused(f"{doing}: 422 {exc}", status=422) from None
    except rx.UnknownError as exc:
        status = getattr(exc, "status_code", None)
        raise RedmineUnavailable(f"{doing}: HTTP {status}") from None
    except (rx.BaseRedmineError, ValueError, KeyError) as exc:
        raise RedmineUnavailable(f"{doing}: unexpected answer: {type(exc).__name__}: {exc}") from None


def _short(exc: BaseException) -> str:
    text = str(exc)
    return text if len(text) < 200 else text[:200] + "…"


def connect(settings: Settings, impersonate: str | None = None) -> Redmine:
    return Redmine(
        settings.url,
        key=settings.key,
        impersonate=impersonate,
        engine=_TimeoutEngine,
        requests={"timeout": settings.timeout, "verify": settings.verify},
    )
