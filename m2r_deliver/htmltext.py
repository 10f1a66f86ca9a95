"""HTML bodies made readable as plain text.

A request body needs paragraphs, line breaks, list items and link targets; it does not
need layout. That is a small state machine over the tags, fed by a tokenizer of our own:
the standard library's HTMLParser takes time quadratic in the input on some malformed
shapes (``<a <a <a …``, unterminated comments), and a mail may be anything.

The tokenizer looks at each character a bounded number of times: every search starts
where the previous one ended, and a construct that is never closed (a tag without ``>``,
a comment without ``-->``) ends the document. Nested lists indent at most
``MAX_INDENT`` levels, so the text stays linear in the input however deep they go.
"""

from __future__ import annotations

import html
import re

_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "blockquote", "pre", "table",
    "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "address", "form", "center",
}
_ROW = {"tr", "dt", "dd"}
_SKIP = {"head", "style", "script", "title", "xml", "o:p"}
#: Elements whose content is text up to their end tag, never markup (as browsers read them).
_RAW_TEXT = {"script", "style"}
#: Deeper lists are indented like this one: the indentation is bounded, the text linear.
MAX_INDENT = 10

_TAG_NAME = re.compile(r"(/?)([A-Za-z][^\s/>]*)")
_ATTRIBUTE = re.compile(r"""([^\s=/>"']+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>]*))?""")
_SPACE = re.compile(r"\s+")
_TAG_STOP = re.compile(r"[>\"']")


class _Converter:
    def __init__(self) -> None:
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.lists: list[list[int]] = []  # one counter per open list; [-1] means unordered
        self.href: str | None = None

    def breakline(self, blank: bool = False) -> None:
        self.out.append("\n\n" if blank else "\n")

    def starttag(self, tag: str, attrs: dict[str, str]) -> None:
        if tag in _SKIP:
            self.skipping += 1
        elif tag == "br":
            self.breakline()
        elif tag in ("ul", "ol"):
            self.lists.append([0 if tag == "ol" else -1])
            self.breakline()
        elif tag == "li":
            self.breakline()
            counter = self.lists[-1] if self.lists else [-1]
            indent = "  " * min(max(len(self.lists) - 1, 0), MAX_INDENT)
            if counter[0] >= 0:
                counter[0] += 1
                self.out.append(f"{indent}{counter[0]}. ")
            else:
                self.out.append(f"{indent}* ")
        elif tag in _BLOCK:
            if tag == "pre":
                self.pre += 1
            self.breakline(blank=True)
        elif tag in _ROW:
            self.breakline()
        elif tag in ("td", "th"):
            self.out.append(" ")
        elif tag == "a":
            self.href = attrs.get("href")
        elif tag == "img":
            alt = attrs.get("alt")
            if alt:
                self.out.append(alt)

    def endtag(self, tag: str) -> None:
        if tag in _SKIP:
            self.skipping = max(self.skipping - 1, 0)
        elif tag in ("ul", "ol"):
            if self.lists:
                self.lists.pop()
            self.breakline()
        elif tag in _BLOCK:
            if tag == "pre":
                self.pre = max(self.pre - 1, 0)
            self.breakline(blank=True)
        elif tag == "a":
            self.href = None

    def data(self, data: str) -> None:
        if self.skipping or not data:
            return
        data = html.unescape(data)
        if not self.pre:
            data = _SPACE.sub(" ", data)
        self.out.append(data)
        if self.href and self.href.startswith(("http:", "https:")) and self.href not in data:
            self.out.append(f" <{self.href}>")
            self.href = None

    def text(self) -> str:
        text = "".join(self.out).replace("\xa0", " ")
        lines = [line.strip(" \t") if not self.pre else line.rstrip() for line in text.split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def _tag_end(source: str, start: int) -> int:
    """The index of the ``>`` that closes the tag whose attributes begin at *start* (a
    ``>`` inside a quoted value does not), or -1. Each character is looked at once."""
    pos = start
    while True:
        stop = _TAG_STOP.search(source, pos)
        if not stop or stop.group() == ">":
            return stop.start() if stop else -1
        end = source.find(stop.group(), stop.end())
        if end < 0:  # an unterminated quote: the tag ends at the next ">" after all
            return source.find(">", stop.end())
        pos = end + 1


def _attributes(text: str) -> dict[str, str]:
    attrs: dict[str, str] = {}
    for match in _ATTRIBUTE.finditer(text):
        name, value = match.group(1).lower(), match.group(2) or ""
        if value[:1] in ('"', "'"):
            value = value[1:-1]
        attrs.setdefault(name, html.unescape(value))
    return attrs


def _convert(source: str, converter: _Converter) -> None:
    pos, size = 0, len(source)
    while pos < size:
        lt = source.find("<", pos)
        if lt < 0:
            converter.data(source[pos:])
            return
        converter.data(source[pos:lt])
        if source.startswith("<!--", lt):
            end = source.find("-->", lt + 4)
            if end < 0:
                return
            pos = end + 3
            continue
        if source.startswith(("<!", "<?"), lt):
            end = source.find(">", lt + 2)
            if end < 0:
                return
            pos = end + 1
            continue
        name = _TAG_NAME.match(source, lt + 1)
        if not name:  # a "<" that opens no tag is text
            converter.data("<")
            pos = lt + 1
            continue
        end = _tag_end(source, name.end())
        if end < 0:
            return
        tag = name.group(2).lower()
        if name.group(1):
            converter.endtag(tag)
            pos = end + 1
            continue
        converter.starttag(tag, _attributes(source[name.end():end]))
        pos = end + 1
        if tag in _RAW_TEXT:
            closing = re.compile(rf"</{re.escape(tag)}\b", re.I).search(source, pos)
            stop = closing.start() if closing else size
            converter.data(source[pos:stop])
            pos = stop


def html_to_text(source: str) -> str:
    converter = _Converter()
    _convert(source, converter)
    return converter.text()
