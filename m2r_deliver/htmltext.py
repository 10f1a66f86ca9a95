"""HTML bodies made readable as plain text, with the standard library's HTMLParser.

A request body needs paragraphs, line breaks, list items and link targets; it does not
need layout. That is a small state machine over HTMLParser's events, so no third-party
converter is loaded for the few mails that are HTML-only.
"""

from __future__ import annotations

import re
from html.parser import HTMLParser

_BLOCK = {
    "p", "div", "section", "article", "header", "footer", "blockquote", "pre", "table",
    "ul", "ol", "dl", "h1", "h2", "h3", "h4", "h5", "h6", "hr", "address", "form", "center",
}
_ROW = {"tr", "dt", "dd"}
_SKIP = {"head", "style", "script", "title", "xml", "o:p"}


class _Converter(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skipping = 0
        self.pre = 0
        self.lists: list[list[int]] = []  # one counter per open list; [-1] means unordered
        self.href: str | None = None

    def breakline(self, blank: bool = False) -> None:
        self.out.append("\n\n" if blank else "\n")

    def handle_starttag(self, tag, attrs):
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
            indent = "  " * max(len(self.lists) - 1, 0)
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
            self.href = dict(attrs).get("href")
        elif tag == "img":
            alt = dict(attrs).get("alt")
            if alt:
                self.out.append(alt)

    def handle_endtag(self, tag):
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

    def handle_data(self, data):
        if self.skipping:
            return
        if not self.pre:
            data = re.sub(r"\s+", " ", data)
        self.out.append(data)
        if self.href and self.href.startswith(("http:", "https:")) and self.href not in data:
            self.out.append(f" <{self.href}>")
            self.href = None

    def text(self) -> str:
        text = "".join(self.out).replace("\xa0", " ")
        lines = [line.strip(" \t") if not self.pre else line.rstrip() for line in text.split("\n")]
        text = "\n".join(lines)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")


def html_to_text(html: str) -> str:
    converter = _Converter()
    converter.feed(html)
    converter.close()
    return converter.text()
