"""One section of the config, checked against its keys before anything is built from it.

A mistake is noted, never raised, so that every mistake of the file and the flags is
reported at once; a key whose value is wrong reads as its default meanwhile.
"""

from __future__ import annotations

from typing import Any

from .schema import Section

FLAGS = "(flags)"


class Mistakes(list):
    """Every mistake found, one line each: where, which key, why."""

    def add(self, where: str, key: str, reason: str) -> None:
        self.append(f"{where}: {key}: {reason}")


class Values:
    """The table of one section as the file and the flags give it."""

    def __init__(self, section: Section, table: dict[str, Any], where: str, mistakes: Mistakes,
                 flagged: frozenset[str] = frozenset(), label: str | None = None, unknown: str | None = None):
        self.section, self.table, self.mistakes = section, table, mistakes
        self._where, self._flagged = where, flagged
        self._label = label or section.name + "."
        self._bad: set[str] = set()
        for name, value in table.items():
            if name not in section:
                self.fail(name, unknown or f"unknown key (known: {', '.join(section.names)})")
                continue
            reason = section[name].kind.check(value)
            if reason:
                self.fail(name, reason)

    def where(self, name: str) -> str:
        return FLAGS if name in self._flagged else self._where

    def fail(self, name: str, reason: str) -> None:
        self._bad.add(name)
        self.mistakes.add(self.where(name), self._label + name, reason)

    def given(self, name: str) -> bool:
        """The file or a flag sets *name* to a value that passed its checks."""
        return name in self.table and name not in self._bad

    def raw(self, name: str) -> Any:
        """As written (the default as the schema writes it when not given)."""
        return self.table[name] if self.given(name) else self.section[name].default

    def __getitem__(self, name: str) -> Any:
        key = self.section[name]
        return key.kind.convert(self.table[name]) if self.given(name) else key.value

    @property
    def ok(self) -> bool:
        return not self._bad
