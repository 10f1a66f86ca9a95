"""m2r-deliver.toml(5), written from the config schema so that the page lists exactly
the keys the program reads, with their kinds, defaults and ranges.

``python -m m2r_deliver.manpage [PATH]`` writes the page (default man/m2r-deliver.toml.5
beside the package); ``--check`` exits 1 when the page at PATH differs from what it would write.
"""

from __future__ import annotations

import argparse
import sys
import textwrap
from pathlib import Path

from . import __version__
from .config.schema import SECTIONS, Key, Section

#: The date of the page's last change of content; mandoc and groff print it in the footer.
DATE = "2026-12-01"
PAGE = Path(__file__).resolve().parent.parent / "man" / "m2r-deliver.toml.5"

DESCRIPTION = """\
m2r-deliver reads its configuration from one TOML file (TOML 1.0), by default
\\fI$XDG_CONFIG_HOME/m2r-deliver/config.toml\\fR, that is
\\fI~/.config/m2r-deliver/config.toml\\fR; \\fB\\-\\-config\\fR names another.
The flags of the command line override the file's values, and with no file at the default
path the flags alone may configure it (at least \\fB\\-\\-url\\fR and \\fB\\-\\-key\\-file\\fR).
.PP
A file that holds \\fB[redmine] key\\fR, and every \\fBkey_file\\fR, must not be readable by
group or others (\\fBchmod 600\\fR): the program refuses them otherwise. The API key file
holds the key on its first line, alone; a second line that is not empty is refused.
.PP
Every mistake \\(em an unknown section or key, a value of the wrong type, out of its range
or not one of its choices \\(em is reported at once, each naming the file, the key and the
reason. A delivery run logs them and exits 75, so the mail waits for the fix;
\\fBm2r\\-deliver check\\fR prints them. Numbers must be finite: \\fBnan\\fR and \\fBinf\\fR
are refused, as are empty paths.
.PP
A \\fIduration\\fR is a number of seconds, or a number followed by \\fBs\\fR, \\fBm\\fR,
\\fBh\\fR, \\fBd\\fR or \\fBw\\fR (\\fB"12h"\\fR, \\fB"5d"\\fR). Address patterns are
shell-style globs, compared without regard to case; a list means \\(lqany of these\\(rq.
A relative \\fIpath\\fR in \\fB[guard]\\fR is taken inside the state directory; \\fB~\\fR
at the start of a path is the home directory.
.PP
New-issue values come from, in rising precedence: \\fB[issue]\\fR, the first matching
\\fB[[route]]\\fR, the \\fB[form] fields\\fR of the body, a project named by the
sub-address; then the mail's keywords where \\fBallow_override\\fR permits.
"""

EXAMPLE = """\
[redmine]
url = "https://redmine.example.org"
key_file = "~/.config/m2r-deliver/api-key"

[issue]
project = "helpdesk"
tracker = "Support"
allow_override = ["tracker", "priority"]

[guard]
redmine_from = ["redmine@example.org"]

[[route]]
to = ["ops@example.org", "*+ops@example.org"]
project = "ops"
tracker = "Bug"
"""

FILES = (
    ("~/.config/m2r-deliver/config.toml", "the configuration ($XDG_CONFIG_HOME/m2r-deliver/config.toml)"),
    ("~/.config/m2r-deliver/api-key", "the API key file the example names (any path, via key_file)"),
    ("~/.local/state/m2r-deliver/", ("the state directory: ledger, caches, quarantine, held mail "
                                     "($XDG_STATE_HOME/m2r-deliver, or [state] dir)")),
)


def escape(text: str) -> str:
    """Plain text as roff: backslashes, hyphens, and every character outside ASCII."""
    out = text.replace("\\", "\\e").replace("-", "\\-")
    out = "".join(c if ord(c) < 128 else f"\\[u{ord(c):04X}]" for c in out)
    return "\\&" + out if out[:1] in (".", "'") else out


def filled(lines: list[str], width: int = 79) -> list[str]:
    """Text lines rewrapped to *width* (roff joins them again); requests left as they are."""
    out: list[str] = []
    for line in lines:
        if line.startswith(".") or len(line) <= width:
            out.append(line)
            continue
        for part in textwrap.wrap(line, width, break_long_words=False, break_on_hyphens=False):
            out.append("\\&" + part if part[:1] in (".", "'") else part)
    return out


def key_entry(key: Key) -> list[str]:
    default = key.kind.show(key.default) if key.default is not None else None
    if default is None:
        shown = f"unset: {key.unset}" if key.unset else "unset"
    else:
        shown = f"default: {default}"
    limits = key.kind.limits()
    text = key.doc + (f"; {limits}" if limits else "") + "."
    return [".TP", f"\\fB{escape(key.name)}\\fR = \\fI{escape(key.kind.name)}\\fR ({escape(shown)})",
            escape(text)]


def section_entries(section: Section) -> list[str]:
    title = f"[[{section.name}]]" if section.array else f"[{section.name}]"
    return [f".SS {title}", escape(section.doc), *(line for key in section.keys for line in key_entry(key))]


def render() -> str:
    lines = [
        f'.TH M2R\\-DELIVER.TOML 5 {DATE} "m2r\\-deliver {__version__}" "File Formats"',
        ".SH NAME",
        "m2r\\-deliver.toml \\- configuration file of m2r\\-deliver",
        ".SH SYNOPSIS",
        ".I ~/.config/m2r\\-deliver/config.toml",
        ".SH DESCRIPTION",
        *DESCRIPTION.rstrip("\n").split("\n"),
        ".PP",
        "The sections and their keys follow; a key left out has its default.",
        *(line for section in SECTIONS for line in section_entries(section)),
        ".SH FILES",
        *(line for path, what in FILES for line in (".TP", f".I {escape(path)}", escape(what) + ".")),
        ".SH EXAMPLES",
        ".EX",
        *(escape(line) if line else "" for line in EXAMPLE.rstrip("\n").split("\n")),
        ".EE",
        ".SH SEE ALSO",
        ".BR m2r\\-deliver (1)",
    ]
    return "\n".join(filled(lines)) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m m2r_deliver.manpage", description=__doc__.split("\n\n")[0])
    parser.add_argument("path", nargs="?", type=Path, default=PAGE, help=f"where the page goes (default {PAGE})")
    parser.add_argument("--check", action="store_true", help="exit 1 when the page there is not what it would be")
    args = parser.parse_args(argv)
    page = render()
    if args.check:
        current = args.path.read_text(encoding="utf-8") if args.path.exists() else ""
        if current != page:
            print(f"{args.path} is stale: run python -m m2r_deliver.manpage", file=sys.stderr)
            return 1
        return 0
    args.path.parent.mkdir(parents=True, exist_ok=True)
    args.path.write_text(page, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
