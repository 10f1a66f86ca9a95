"""The files the config reads: where they are, the TOML itself, and the API key.

The key is a secret: no message here ever shows any part of it, nor of the file it is in.
"""

from __future__ import annotations

import os
import pwd
import stat
import sys
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10
    import tomli as tomllib

from ..errors import ConfigError


def default_config_path(env: dict[str, str]) -> Path:
    base = env.get("XDG_CONFIG_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".config")
    return Path(base) / "m2r-deliver" / "config.toml"


def default_state_dir(env: dict[str, str]) -> Path:
    base = env.get("XDG_STATE_HOME") or os.path.join(env.get("HOME") or os.path.expanduser("~"), ".local", "state")
    return Path(base) / "m2r-deliver"


def running_as() -> str:
    """The user this process runs as, by name when it has one."""
    uid = os.geteuid()
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return f"uid {uid}"


def no_config_file(path: Path) -> ConfigError:
    return ConfigError(f"no config file at {path} (running as {running_as()}); write one there, or name it "
                       "with --config PATH")


def read_toml(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", file=str(path)) from None
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError("not UTF-8", file=str(path)) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", file=str(path)) from None
    redmine = data.get("redmine")
    if isinstance(redmine, dict) and "key" in redmine:
        reason = refused_for_others(path, "it holds [redmine] key")
        if reason:
            raise ConfigError(reason, file=str(path))
    return data


def refused_for_others(path: Path, why: str) -> str | None:
    """Why a file with a secret in it must not be used as it is (None: it may)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        return f"{why} but group or others may read it (mode {stat.S_IMODE(mode):04o}); run: chmod 600 {path}"
    return None


def read_key_file(path: Path) -> str:
    """The API key: the file's first line. Raises ValueError naming the file, never its content."""
    label = f"API key file {path}"
    refused = refused_for_others(path, f"{label}: it is an API key file")
    if refused:
        raise ValueError(refused)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise ValueError(f"cannot read {label}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"{label} is not UTF-8 text") from None
    lines = text.splitlines()
    if not any(line.strip() for line in lines):
        raise ValueError(f"{label} is empty")
    return checked_key(lines[0], lines[1:], label)


def checked_key(key: str, more: list[str] | None = None, label: str = "the key") -> str:
    """*key* stripped, when it can be an API key. Raises ValueError that shows none of it."""
    key = key.strip()
    if not key:
        raise ValueError(f"{label}: the first line is empty; the key must be on the first line, alone")
    if any(line.strip() for line in (more or ())):
        raise ValueError(f"{label} has more than one line; it must hold the key alone, on its first line "
                         "(its content is not shown here)")
    if not all("!" <= c <= "~" for c in key):  # printable ASCII, no space
        raise ValueError(f"{label}: the key must be one word of printable ASCII characters (not shown here)")
    return key
