"""Attachments: each file streamed to ``/uploads.json``, the files Redmine would not
take left out with the reason."""

from __future__ import annotations

import re
import tempfile
from dataclasses import replace
from typing import Any

from redminelib import Redmine, exceptions as rx

from ..errors import RedmineRefused
from ..mail import Attachment
from ..plan import PlannedAttachment, size_text
from .cache import NameCache
from .client import translated_errors


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
            uploads.append(upload(redmine, attachment))
        except RedmineRefused as exc:
            refused.append(replace(planned, left_out=f"Redmine refused it: {exc.reason}"))
            limit = _size_limit(exc.reason, planned.size)
            if limit:
                limits = {**limits, "attachment_max_size": limit}
                cache.put("limits", limits)
    return uploads, refused


def upload(redmine: Redmine, attachment: Attachment) -> dict[str, Any]:
    """Decode the file into a temporary file and stream that to ``/uploads.json``: the
    decoded bytes are never all in memory."""
    with tempfile.TemporaryFile(prefix="m2r-upload.") as spool:
        attachment.write_to(spool)
        spool.seek(0)
        with translated_errors(f"uploading {attachment.filename!r}"):
            try:
                answer = redmine.upload(spool, filename=attachment.filename)
            except rx.ValidationError as exc:
                raise RedmineRefused(str(exc), status=422) from None
            except rx.RequestEntityTooLargeError:
                raise RedmineRefused("413 Request Entity Too Large", status=413) from None
    return {"token": answer["token"], "filename": attachment.filename, "content_type": attachment.content_type}


def _size_limit(reason: str, size: int) -> int | None:
    """Redmine's "exceeds the maximum allowed file size (5242880)", in any language."""
    numbers = [int(n) for n in re.findall(r"\((\d+)\)", reason)]
    return numbers[-1] if numbers and 0 < numbers[-1] < size else None
