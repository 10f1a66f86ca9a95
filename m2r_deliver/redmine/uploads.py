"""Attachments: each file streamed to ``/uploads.json``, the files Redmine would not
take left out with the reason.

A file Redmine answers with a client error (413, 414, 422, …) or twice with a server
error is that file's trouble, not Redmine's: it is left out and the rest is filed. A
file whose upload gets no answer at all stops the mail (Redmine is down: retry)."""

from __future__ import annotations

import re
import tempfile
import time
from typing import Any

from redminelib import Redmine, exceptions as rx

from ..errors import RedmineRefused
from ..mail import Attachment
from ..plan import PlannedAttachment, size_text
from .cache import NameCache
from .client import translated_errors
from ..valueclass import replace


def upload_attachments(redmine: Redmine, cache: NameCache, files: list[tuple[PlannedAttachment, Attachment]],
                       ) -> tuple[list[dict[str, Any]], list[PlannedAttachment]]:
    """Upload each file not already left out; returns the upload tokens, and the files
    Redmine would not take (too large, an extension it denies), each with the reason.

    Redmine's size limit is not in its API: it is read from the first refusal and kept
    in the cache, so later files over it are left out without being sent.
    """
    limits = cache.get("limits") or {}
    uploads, refused = [], []
    for planned, attachment in files:
        if planned.left_out:
            continue
        limit = limits.get("attachment_max_size")
        if limit and planned.size > limit:
            refused.append(replace(planned, left_out=f"larger than Redmine accepts ({size_text(limit)})"))
            continue
        try:
            uploads.append(_upload_or_refuse(redmine, attachment, planned.filename))
        except RedmineRefused as exc:
            refused.append(replace(planned, left_out=f"Redmine refused it: {exc.reason}"))
            limit = _size_limit(exc.reason, planned.size)
            if limit:
                limits = {**limits, "attachment_max_size": limit}
                cache.put("limits", limits)
    return uploads, refused


#: Pause before the one second try of a file Redmine failed on (500).
SERVER_ERROR_PAUSE = 1.0


def _upload_or_refuse(redmine: Redmine, attachment: Attachment, filename: str) -> dict[str, Any]:
    """Upload; a 500 is tried once more (the site may have hiccupped), then taken as
    Redmine's refusal of this file."""
    try:
        return upload(redmine, attachment, filename)
    except _ServerError:
        time.sleep(SERVER_ERROR_PAUSE)
    try:
        return upload(redmine, attachment, filename)
    except _ServerError as exc:
        raise RedmineRefused(f"{exc} twice", status=500) from None


class _ServerError(Exception):
    pass


def upload(redmine: Redmine, attachment: Attachment, filename: str | None = None) -> dict[str, Any]:
    """Decode the file into a temporary file and stream that to ``/uploads.json``: the
    decoded bytes are never all in memory."""
    filename = filename or attachment.filename
    with tempfile.TemporaryFile(prefix="m2r-upload.") as spool:
        attachment.write_to(spool)
        spool.seek(0)
        with translated_errors(f"uploading {filename!r}"):
            try:
                answer = redmine.upload(spool, filename=filename)
            except rx.ValidationError as exc:
                raise RedmineRefused(str(exc), status=422) from None
            except rx.RequestEntityTooLargeError:
                raise RedmineRefused("413 Request Entity Too Large", status=413) from None
            except rx.ServerError:
                raise _ServerError("Redmine answered 500 Internal Server Error") from None
            except rx.UnknownError as exc:
                status = getattr(exc, "status_code", None)
                if status is None or not 400 <= status < 500 or status == 429:
                    raise
                raise RedmineRefused(f"Redmine answered HTTP {status}", status=status) from None
    return {"token": answer["token"], "filename": filename, "content_type": attachment.content_type}


def _size_limit(reason: str, size: int) -> int | None:
    """Redmine's "exceeds the maximum allowed file size (5242880)", in any language."""
    numbers = [int(n) for n in re.findall(r"\((\d+)\)", reason)]
    return numbers[-1] if numbers and 0 < numbers[-1] < size else None
