"""The kinds of value a config key holds: what the file may say, and what it means.

A kind checks one value as TOML parsed it and returns the reason it cannot work (or
None), converts an accepted value to what the program uses, and names itself for the
man page. Ranges and choices belong to the kind, so a value out of range is reported
exactly like a value of the wrong type.
"""

from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any

from ..lazy import Pattern


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


class Kind:
    #: How the man page names the kind.
    name = "value"
    #: How a wrong type is described: "must be <what>, not <type>".
    what = "a value"

    def accepts(self, value: Any) -> bool:
        return True

    def problem(self, value: Any) -> str | None:
        """The reason *value* (already of an accepted type) cannot work, or None."""
        return None

    def check(self, value: Any) -> str | None:
        if not self.accepts(value):
            return f"must be {self.what}, not {type(value).__name__}"
        return self.problem(value)

    def convert(self, value: Any) -> Any:
        return value

    def limits(self) -> str:
        """The allowed values, for the man page ("" when any value of the type will do)."""
        return ""

    def show(self, value: Any) -> str:
        """*value* written as in the file."""
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, str):
            return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
        if isinstance(value, (list, tuple)):
            return "[" + ", ".join(self.show(v) for v in value) + "]"
        if isinstance(value, dict):
            return "{" + ", ".join(f"{self.show(k)} = {self.show(v)}" for k, v in value.items()) + "}"
        if isinstance(value, float) and value.is_integer():
            return str(int(value))
        return str(value)


class Flag(Kind):
    name, what = "boolean", "true or false"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, bool)


class Text(Kind):
    """A string; *blank_ok* False refuses an empty or all-blank one."""

    name = "string"
    what = "a string"

    def __init__(self, blank_ok: bool = True):
        self.blank_ok = blank_ok

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str)

    def problem(self, value: Any) -> str | None:
        if not self.blank_ok and not value.strip():
            return "must not be empty"
        if "\x00" in value:
            return "must not contain a NUL character"
        return None


class Choice(Text):
    name = "string"

    def __init__(self, blank_ok: bool = True, choices: tuple[str, ...] = ()):
        super().__init__(blank_ok)
        self.choices = choices

    def problem(self, value: Any) -> str | None:
        if value not in self.choices:
            return f"must be one of {', '.join(self.choices)}, not {value!r}"
        return None

    def limits(self) -> str:
        return "one of " + ", ".join(self.choices)


class Location(Text):
    """A file or directory: ``~`` expanded; empty means nothing and is refused."""

    name = "path"

    def __init__(self, blank_ok: bool = False):
        super().__init__(blank_ok)

    def convert(self, value: Any) -> Path:
        return Path(os.path.expanduser(value.strip()))


class Url(Text):
    name = "URL"

    def __init__(self, blank_ok: bool = False):
        super().__init__(blank_ok)

    def problem(self, value: Any) -> str | None:
        if not re.match(r"https?://[^/\s]+", value):
            return f"not an http(s) URL: {value!r}"
        return None

    def convert(self, value: Any) -> str:
        return value.rstrip("/")


class Number(Kind):
    """A finite number within [low, high]; *above_low* excludes *low* itself."""

    def __init__(self, low: float | None = None, high: float | None = None, *, above_low: bool = False,
                 whole: bool = False, unit: str = ""):
        self.low, self.high, self.above_low, self.whole, self.unit = low, high, above_low, whole, unit

    @property
    def name(self) -> str:  # type: ignore[override]
        return "integer" if self.whole else "number"

    @property
    def what(self) -> str:  # type: ignore[override]
        return "an integer" if self.whole else "a number"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) if self.whole else _is_number(value)

    def problem(self, value: Any) -> str | None:
        if not math.isfinite(value):
            return f"must be a finite number, not {value}"
        if self.low is not None and (value <= self.low if self.above_low else value < self.low):
            return f"must be {self.limits()}, not {self.show(value)}"
        if self.high is not None and value > self.high:
            return f"must be {self.limits()}, not {self.show(value)}"
        return None

    def convert(self, value: Any) -> Any:
        return int(value) if self.whole else float(value)

    def limits(self) -> str:
        noun = ("a whole number" if self.whole else "a number") + (f" of {self.unit}" if self.unit else "")
        if self.low is None:
            return ""
        low = self.show(self.low)
        if self.high is not None:
            high = self.show(self.high)
            return f"{noun} above {low} and at most {high}" if self.above_low else f"{noun} from {low} to {high}"
        return f"{noun} above {low}" if self.above_low else f"{noun}, at least {low}"


#: A number of seconds, or a number with a unit; the text form a flag or a TOML string takes.
_DURATION = Pattern(r"\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class Duration(Kind):
    """Seconds: a number, or Postfix-style text ("90s", "30m", "12h", "5d", "1w")."""

    name, what = "duration", "a duration"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or _is_number(value)

    def problem(self, value: Any) -> str | None:
        if isinstance(value, str) and not _DURATION.fullmatch(value.lower()):
            return f"not a duration: {value!r} (write e.g. 5d, 12h, 30m, 90s, or a number of seconds)"
        seconds = self.convert(value)
        if not math.isfinite(seconds) or seconds < 0:
            return f"must be a duration of zero or more, not {value!r}"
        return None

    def convert(self, value: Any) -> float:
        if isinstance(value, str):
            match = _DURATION.fullmatch(value.lower())
            assert match, value
            return float(match.group(1)) * _UNITS[match.group(2) or "s"]
        return float(value)

    def limits(self) -> str:
        return "seconds, or a number with s, m, h, d or w"


class Strings(Kind):
    """A list of strings; *blank_ok* False refuses a blank entry (else blank ones are left out)."""

    name = "list of strings"

    def __init__(self, blank_ok: bool = True):
        self.blank_ok = blank_ok

    @property
    def what(self) -> str:  # type: ignore[override]
        return "a list of strings" if self.blank_ok else "a list of non-empty strings"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)

    def items(self, value: Any) -> list[str]:
        return value

    def problem(self, value: Any) -> str | None:
        if not self.blank_ok and not all(v.strip() for v in self.items(value)):
            return "must not have an empty entry" if isinstance(value, list) else "must not be empty"
        return None

    def convert(self, value: Any) -> tuple[str, ...]:
        return tuple(v for v in value if v.strip())


class Patterns(Strings):
    """One pattern or a list of them (a list means "any of these")."""

    name, what = "string or list of strings", "a string or a list of strings"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or super().accepts(value)

    def items(self, value: Any) -> list[str]:
        return [value] if isinstance(value, str) else value

    def convert(self, value: Any) -> tuple[str, ...]:
        return tuple(self.items(value))


class Table(Kind):
    name, what = "table", "a table"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, dict)


class FieldRef(Kind):
    """A custom field by name (a string) or by id (an integer)."""

    name, what = "string or integer", "a string or an integer"

    def accepts(self, value: Any) -> bool:
        return isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))

    def problem(self, value: Any) -> str | None:
        return None if str(value).strip() else "must name an issue custom field (its name or id)"

    def convert(self, value: Any) -> str:
        return str(value).strip()
