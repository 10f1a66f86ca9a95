"""Regular expressions compiled on first use.

Most patterns serve only some mails (replies, forms, keyword lines); a process that
drops a bounce should not compile them. ``Pattern`` behaves like the compiled pattern
it stands for.
"""

from __future__ import annotations

import re


class Pattern:
    """``re.compile(pattern, flags)``, done the first time a method is called."""

    __slots__ = ("pattern", "flags", "_compiled")

    def __init__(self, pattern: str | bytes, flags: int = 0):
        self.pattern, self.flags = pattern, flags
        self._compiled: re.Pattern | None = None

    def __getattr__(self, name: str):
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, self.flags)
        return getattr(self._compiled, name)

    def __repr__(self) -> str:
        return f"Pattern({self.pattern!r}, {self.flags!r})"
