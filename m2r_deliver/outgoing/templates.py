"""Templates: the text of a mail the program sends, from a file the operator can edit.

A template is UTF-8 text with ``{name}`` placeholders (``{{`` and ``}}`` for braces);
only the names in PLACEHOLDERS exist, as plain names: ``{subject.upper}`` or
``{issue_id!r}`` is a mistake, reported with the file and the placeholder, before any mail
is sent. English and Japanese acknowledgements (ack.en.txt, ack.ja.txt) and relayed notes
(relay.en.txt, relay.ja.txt, with RELAY_PLACEHOLDERS) are shipped; a relative name is
looked for next to the config file, then among the shipped ones.
"""

from __future__ import annotations

import string
from importlib import resources
from pathlib import Path

from ..errors import ConfigError
from ..valueclass import valueclass

PLACEHOLDERS = ("issue_id", "subject", "project", "tracker", "requester", "url")
#: A relayed note's: the acknowledgement's, and the note's author, text and the issue's status.
RELAY_PLACEHOLDERS = (*PLACEHOLDERS, "author", "notes", "status")
SHIPPED = ("ack.en.txt", "ack.ja.txt", "relay.en.txt", "relay.ja.txt")
_LIMIT = 64 * 1024  # bytes: a template is a short text


@valueclass(frozen=True)
class Template:
    #: Where it was read from, for messages about it.
    source: str
    text: str
    #: The names it may use, each of which ``fill`` must be given.
    placeholders: tuple[str, ...] = PLACEHOLDERS

    def fill(self, values: dict[str, str]) -> str:
        """The text with every placeholder replaced (all of ``placeholders`` must be given)."""
        missing = set(self.placeholders) - set(values)
        if missing:
            raise ValueError(f"no value for {', '.join(sorted(missing))}")
        return self.text.format_map({name: str(values[name]) for name in self.placeholders})


def load(name: str | Path, config_dir: Path | None, key: str = "acknowledge.template",
         fallback: str | None = None, placeholders: tuple[str, ...] = PLACEHOLDERS) -> Template:
    """Read and check the template *name*: absolute, next to the config, or shipped; when
    none of these exists, the shipped *fallback* (the default name's)."""
    path = Path(name).expanduser()
    if not path.is_absolute() and config_dir is not None:
        path = config_dir / path
    if path.is_absolute() and path.exists():
        return parse(_read(path, key), str(path), key, placeholders)
    for shipped_name in (str(name), fallback):
        if shipped_name in SHIPPED and Path(shipped_name).name == shipped_name:
            shipped = resources.files(__package__).joinpath("templates", shipped_name)
            return parse(shipped.read_bytes(), f"(shipped) {shipped_name}", key, placeholders)
    raise ConfigError(f"template {path} does not exist (shipped: {', '.join(SHIPPED)})", key=key)


def parse(data: bytes, source: str, key: str = "acknowledge.template",
          placeholders: tuple[str, ...] = PLACEHOLDERS) -> Template:
    if len(data) > _LIMIT:
        raise ConfigError(f"template {source} is larger than {_LIMIT // 1024} KB", key=key)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"template {source} is not UTF-8 (byte {exc.start})", key=key) from None
    text = text.replace("\r\n", "\n").removeprefix("\ufeff")
    check(text, source, key, placeholders)
    return Template(source, text, placeholders)


def check(text: str, source: str, key: str = "acknowledge.template",
          placeholders: tuple[str, ...] = PLACEHOLDERS) -> None:
    """Every placeholder is one of *placeholders*, written plainly; braces are balanced."""
    try:
        fields = [(name, spec, conversion) for _, name, spec, conversion in string.Formatter().parse(text)
                  if name is not None]
    except ValueError as exc:
        raise ConfigError(f"template {source}: {exc} (write {{{{ and }}}} for literal braces)", key=key) from None
    known = ", ".join("{%s}" % name for name in placeholders)
    for name, spec, conversion in fields:
        if name not in placeholders:
            raise ConfigError(f"template {source}: unknown placeholder {{{name}}} (known: {known})", key=key)
        if spec or conversion:
            shown = name + (f"!{conversion}" if conversion else "") + (f":{spec}" if spec else "")
            raise ConfigError(f"template {source}: placeholder {{{shown}}} must be a plain name ({{{name}}})",
                              key=key)


def _read(path: Path, key: str) -> bytes:
    try:
        with path.open("rb") as file:
            return file.read(_LIMIT + 1)
    except OSError as exc:
        raise ConfigError(f"cannot read template {path}: {exc.strerror}", key=key) from None
