"""Guard: the chain of small named rules that decide, before any network work, whether a
mail is machine noise. The first rule that fires decides; its name is logged.

Each rule is a class with a ``name``, a one-line ``description`` and ``check(mail,
settings)`` returning the reason it fires, or None. A new rule is a new module here,
added to ``CHAIN`` in the order it should run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..config import Settings
from ..mail import Mail


@dataclass(frozen=True)
class Verdict:
    guard: str
    reason: str


class Guard(Protocol):
    name: str
    description: str

    def check(self, mail: Mail, settings: Settings) -> str | None: ...


CHAIN: tuple[Guard, ...] = ()


def run(mail: Mail, settings: Settings, chain: tuple[Guard, ...] = CHAIN) -> Verdict | None:
    for guard in chain:
        reason = guard.check(mail, settings)
        if reason:
            return Verdict(guard.name, reason)
    return None
