"""Form: the ``Label: value`` lines a web form writes into its mail's body.

The original setup's form writes ``依頼者メール: taro@example.org``; [sender]
requester_labels name the labels that hold the requester's address, [form] fields map
labels to issue attributes or custom fields, and [form] subject builds the subject from
them. Pure: no network.
"""

from __future__ import annotations

import fnmatch
import string
from typing import Any

from .config import Settings
from .lazy import Pattern
from .mail import Mail

# "Label: value" or "Label：value" (full-width colon), the label at the line's start.
_FIELD = Pattern(r"^\s*([^:：\n]{1,80}?)\s*[:：]\s*(.*?)\s*$")
_ADDRESS = Pattern(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")


def is_form_sender(mail: Mail, settings: Settings) -> bool:
    """Mail from a [form] senders address: its fields are trusted to name the requester."""
    sender = mail.sender.addr if mail.sender else ""
    return bool(sender) and any(fnmatch.fnmatchcase(sender, pattern) for pattern in settings.form_senders)


def applies(mail: Mail, settings: Settings) -> bool:
    """Form fields are read from [form] senders' mail, or from every mail when none are set."""
    return not settings.form_senders or is_form_sender(mail, settings)


def read_fields(body: str, labels: set[str]) -> dict[str, str]:
    """The first value of each wanted label (labels compare without case or spacing)."""
    wanted = {_fold(label): label for label in labels}
    found: dict[str, str] = {}
    for line in body.split("\n"):
        match = _FIELD.match(line)
        if match:
            label = wanted.get(_fold(match.group(1)))
            if label and label not in found and match.group(2):
                found[label] = match.group(2)
    return found


def requester_address(fields: dict[str, str], labels: tuple[str, ...]) -> tuple[str, str] | None:
    """(label, address) of the first requester field that holds an address, in the
    order the labels are listed."""
    for label in labels:
        match = _ADDRESS.search(fields.get(label, ""))
        if match:
            return label, match.group(0).lower()
    return None


def attributes(fields: dict[str, str], mapping: dict[str, str]) -> dict[str, Any]:
    """[form] fields as Plan fields: attributes, and custom fields under "custom_fields"."""
    values: dict[str, Any] = {}
    for label, target in mapping.items():
        value = fields.get(label)
        if not value:
            continue
        if target.startswith("cf:"):
            values.setdefault("custom_fields", {})[target[3:]] = value
        else:
            values[target] = value
    return values


def subject(template: str, fields: dict[str, str], original: str) -> str:
    """The [form] subject template over the fields ({subject} is the mail's own); a field
    the mail lacks is left empty."""
    values = _Blank({**fields, "subject": original})
    return " ".join(template.format_map(values).split())


def template_labels(template: str | None) -> set[str]:
    """The field labels a [form] subject template uses."""
    if not template:
        return set()
    return {name for _, name, _, _ in string.Formatter().parse(template) if name and name != "subject"}


class _Blank(dict):
    def __missing__(self, key: str) -> str:
        return ""


def _fold(label: str) -> str:
    return " ".join(label.split()).casefold()
