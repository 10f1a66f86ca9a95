"""Quotes: keep only what a reply adds, so a note does not repeat the whole thread.

Removed: Outlook's header block ("From: … Sent: … Subject: …", "-----Original
Message-----", and their Japanese forms) with everything below it; attribution lines
("On … wrote:", "… さんは書きました:", Gmail's "2026年11月27日(金) 9:00 Name <a@b>:") that
introduce a quote; the quoted text itself when the reply is written above or below it
(interleaved answers keep their quotes, they are the context); the signature after
"-- ", also where Thunderbird and Gmail put it, below the quote of a reply written on
top; and "Sent from my iPhone"-style trailers. Pure text in, text out.
"""

from __future__ import annotations

import re

_QUOTED = re.compile(r"^\s*>")
_ORIGINAL_MESSAGE = re.compile(
    r"^\s*-{3,}\s*(original message|元のメッセージ|ursprüngliche nachricht|message d'origine)\s*-{3,}\s*$", re.I)
_RULE = re.compile(r"^\s*_{10,}\s*$")
_HEADER_FROM = re.compile(r"^\s*\*?(from|差出人|送信者)\*?\s*[:：]", re.I)
_HEADER_DATE = re.compile(r"^\s*\*?(sent|date|送信日時|日時|日付)\*?\s*[:：]", re.I)
_HEADER_SUBJECT = re.compile(r"^\s*\*?(subject|件名)\*?\s*[:：]", re.I)
_ATTRIBUTIONS = (
    re.compile(r"^\s*on\b.{0,300}\bwrote\s*:\s*$", re.I),
    re.compile(r"^.{0,300}(さんは書きました|が書きました|は書きました|wrote)\s*[:：]\s*$", re.I),
    re.compile(r"^\s*\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,200}[:：]\s*$"),
    re.compile(r"^\s*\d{4}[/.-]\d{1,2}[/.-]\d{1,2}\b.{0,200}[:：]\s*$"),
)
_WRAPPED_START = re.compile(r"^\s*(on\b|\d{4}\s*[年/.-])", re.I)
_SIGNATURE = re.compile(r"^--\s*$")
_TRAILERS = re.compile(r"^\s*(sent from my .{1,40}|.{1,20}から送信)\s*$", re.I)
#: A signature longer than this is more likely text that happens to contain "--".
_SIGNATURE_LINES = 15


def strip_reply(text: str) -> str:
    """The new text of a reply. Falls back to *text* unchanged when nothing would remain."""
    lines = text.split("\n")
    lines = _cut_at_outlook_header(lines)
    lines = _drop_attributions(lines)
    lines = _cut_signature_below_quote(lines)
    lines = _drop_quotes(lines)
    lines = _cut_signature(lines)
    stripped = _tidy(lines)
    return stripped or text.strip()


def _cut_at_outlook_header(lines: list[str]) -> list[str]:
    """Outlook quotes without markers below a header block: cut there."""
    for number, line in enumerate(lines):
        if _ORIGINAL_MESSAGE.match(line):
            return lines[:number]
        if _HEADER_FROM.match(line):
            following = lines[number + 1:number + 7]
            if any(_HEADER_DATE.match(f) for f in following) and any(_HEADER_SUBJECT.match(f) for f in following):
                start = number - 1 if number and _RULE.match(lines[number - 1]) else number
                return lines[:start]
    return lines


def _drop_attributions(lines: list[str]) -> list[str]:
    """Remove attribution lines (possibly wrapped over two or three lines) that are
    followed by a quote."""
    kept: list[str] = []
    number = 0
    while number < len(lines):
        span = _attribution_span(lines, number)
        if span and _quote_follows(lines, number + span):
            number += span
            continue
        kept.append(lines[number])
        number += 1
    return kept


def _attribution_span(lines: list[str], start: int) -> int:
    """How many lines the attribution starting at *start* takes (0: none). Only a line
    that opens like one ("On …", a date) may continue on the next lines."""
    first = lines[start]
    if _QUOTED.match(first) or not first.strip():
        return 0
    spans = (1, 2, 3) if _WRAPPED_START.match(first) else (1,)
    for span in spans:
        part = lines[start:start + span]
        if len(part) < span or any(_QUOTED.match(line) or not line.strip() for line in part):
            break
        if any(pattern.match(" ".join(line.strip() for line in part)) for pattern in _ATTRIBUTIONS):
            return span
    return 0


def _quote_follows(lines: list[str], start: int) -> bool:
    for number in range(start, len(lines)):  # no slice: a copy per line would be quadratic
        if lines[number].strip():
            return bool(_QUOTED.match(lines[number]))
    return False


def _drop_quotes(lines: list[str]) -> list[str]:
    """Drop the trailing quote; drop every quote when the reply is one block of text
    above or below it; keep the quotes of an interleaved answer."""
    lines = _without_tail(lines, lambda line: not line.strip() or bool(_QUOTED.match(line)))
    if _text_blocks(lines) <= 1:
        return [line for line in lines if not _QUOTED.match(line)]
    return lines


def _text_blocks(lines: list[str]) -> int:
    blocks, in_text = 0, False
    for line in lines:
        if _QUOTED.match(line):
            in_text = False
        elif line.strip() and not in_text:
            blocks, in_text = blocks + 1, True
    return blocks


def _cut_signature_below_quote(lines: list[str]) -> list[str]:
    """Thunderbird and Gmail put a signature below the quote (the reply on top): cut it
    first, so that the quote is the reply's tail and goes."""
    start = _signature_start(lines)
    if start is None:
        return lines
    above = _without_tail(lines[:start], lambda line: not line.strip())
    return above if above and _QUOTED.match(above[-1]) else lines


def _cut_signature(lines: list[str]) -> list[str]:
    start = _signature_start(lines)
    if start is not None:
        lines = lines[:start]
    return _without_tail(lines, lambda line: not line.strip() or bool(_TRAILERS.match(line)))


def _signature_start(lines: list[str]) -> int | None:
    """The last "-- " line, when what follows it is short enough to be a signature."""
    for number in range(len(lines) - 1, -1, -1):
        if _SIGNATURE.match(lines[number]):
            return number if len(lines) - number - 1 <= _SIGNATURE_LINES else None
    return None


def _without_tail(lines: list[str], drop) -> list[str]:
    """*lines* without the trailing lines for which *drop* is true (one copy, not one per line)."""
    end = len(lines)
    while end and drop(lines[end - 1]):
        end -= 1
    return lines[:end]


def _tidy(lines: list[str]) -> str:
    """At most one blank line in a row, none at either end."""
    out: list[str] = []
    for line in lines:
        if line.strip() or (out and out[-1].strip()):
            out.append(line)
    return "\n".join(out).strip()
