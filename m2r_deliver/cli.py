"""Command line: rdm-mailhandler.rb's flags and ours → Settings → a subcommand.

``m2r-deliver [options]`` delivers the mail on stdin; ``m2r-deliver check`` asks Redmine
whether the configuration will work; ``replay [MAILDIR]`` delivers quarantined mail again;
``status`` shows what the ledger holds. Usage mistakes in delivery mode are configuration
errors: logged, silent, exit 75, so the mail waits for the fix — unless stdin is a terminal:
then a person typed the command, and gets the usage and exit 2 (no mail system runs a
delivery agent with a terminal on stdin). The options are declared in ``options.py``,
which (with argparse) is loaded only for a command line other than a delivery's usual
``--config PATH``.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

from . import log
from .config import load
from .config.kinds import Duration
from .errors import EX_CHECK_FAILED, EX_CLOSED_PIPE, EX_USAGE, ConfigError, DeliveryError, classify, exit_status
from .sinks import is_terminal
from .states import Decision

if TYPE_CHECKING:
    import argparse

SUBCOMMANDS = ("check", "replay", "status")


class Usage(Exception):
    """A mistake on the command line of a person at a terminal: usage, exit 2."""


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if env is None else env)
    command = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else "deliver"
    verbose = "-v" in argv or "--verbose" in argv
    at_terminal = is_terminal(sys.stdin)
    try:
        status = _run(command, argv, env, verbose, at_terminal)
        sys.stdout.flush()  # here, where a closed pipe can still be caught, not at exit
        return status
    except BrokenPipeError:  # `m2r-deliver status | head`: the reader has gone, nothing more to say
        _silence_stdout()
        return EX_CLOSED_PIPE


def _run(command: str, argv: list[str], env: dict[str, str], verbose: bool, at_terminal: bool) -> int:
    config = _config_only(argv) if command == "deliver" and not at_terminal else None
    parser: argparse.ArgumentParser | None = None
    args: argparse.Namespace | None = None
    alarm_after: float | None = None
    try:
        if config is not None:  # the usual delivery: no option to parse, none to override the file
            settings = load(config, {}, env)
        else:
            from .options import build_parser, overrides_from

            parser = build_parser(command, interactive=at_terminal or command in SUBCOMMANDS)
            args = _parse(parser, command, argv, at_terminal)
            if args is None:
                return EX_USAGE
            alarm_after = _max_retry_age(parser, args) if command == "status" and args.check else None
            settings = load(args.config, overrides_from(args), env)
    except Usage as exc:
        assert parser is not None  # only the parser finds usage mistakes
        parser.print_usage(sys.stderr)
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return EX_USAGE
    except ConfigError as exc:
        if alarm_after is not None:  # status --check: a gateway that cannot read its config files nothing
            from .status import CHECK_CRITICAL

            print(f"CRITICAL: config: {exc}", file=sys.stdout)
            return CHECK_CRITICAL
        return _early_failure(command, exc, verbose)
    except Exception as exc:  # a bug of ours before any mail was read: keep the mail, say why
        if command in SUBCOMMANDS:
            raise
        return _early_failure(command, classify(exc), verbose)
    if command == "check":
        from .check import check

        return check(settings, sys.stdout)
    if command == "replay":
        from .replay import replay

        assert args is not None  # a subcommand's line is always parsed
        return replay(settings, Path(os.path.expanduser(args.maildir)) if args.maildir else None, sys.stdout)
    if command == "status":
        from .status import status

        assert args is not None
        return status(settings, sys.stdout, as_json=args.json, alarm_after=alarm_after)
    try:
        from .pipeline import Run, deliver

        return deliver(sys.stdin.buffer, sys.stdout, sys.stderr, settings,
                       Run(dry_run=bool(args and args.dry_run), verbose=settings.verbose))
    except Exception as exc:  # a broken installation, or a bug outside the pass's own net: keep the mail
        return _early_failure(command, classify(exc), verbose, settings.log_file)


def _config_only(argv: list[str]) -> str | None:
    """The config path of a delivery's usual command line, which needs no parser: nothing
    ("", the default file), ``--config PATH`` or ``--config=PATH``; None for any other,
    which argparse reads (an abbreviation, a flag, a mistake)."""
    if not argv:
        return ""
    if len(argv) == 2 and argv[0] == "--config" and argv[1] and not argv[1].startswith("-"):
        return argv[1]
    if len(argv) == 1 and argv[0].startswith("--config="):
        return argv[0].removeprefix("--config=")
    return None


def _parse(parser: argparse.ArgumentParser, command: str, argv: list[str], at_terminal: bool,
           ) -> argparse.Namespace | None:
    """What *parser* reads in *argv*; None when a person at a terminal ran a delivery (told
    how, on stderr)."""
    if command == "deliver" and at_terminal and argv and not argv[0].startswith("-"):
        parser.error(f"unknown command {argv[0]!r} (the commands are {', '.join(SUBCOMMANDS)}; "
                     "without one, m2r-deliver delivers the mail on its stdin)")
    args = parser.parse_args(argv)
    if command == "deliver" and at_terminal:
        print(f"{parser.prog}: reads one mail on stdin, as the mail system runs it (m2r-deliver < message.eml); "
              f"nothing read, nothing recorded. Commands: {', '.join(SUBCOMMANDS)}; --help for more.",
              file=sys.stderr)
        return None
    return args


def _max_retry_age(parser: argparse.ArgumentParser, args: argparse.Namespace) -> float:
    problem = Duration().problem(args.max_retry_age)
    if problem:
        parser.error(f"--max-retry-age: {problem}")
    return Duration().convert(args.max_retry_age)


def _silence_stdout() -> None:
    """Python flushes stdout once more at exit: point it at /dev/null so that flush cannot fail."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _early_failure(command: str, exc: DeliveryError, verbose: bool, log_file: Path | None = None) -> int:
    """A failure outside the delivery pass (before it, or escaping it): logged (syslog,
    and a log file when one is known), silent, and the mail kept."""
    if command in SUBCOMMANDS:  # interactive: say it
        print(f"FAIL config: {exc}", file=sys.stdout)
        return EX_CHECK_FAILED
    log.emit(log.summary(decision=Decision.TEMPFAIL, fault=exc.fault, error=exc.reason), None, failed=True,
             verbose=verbose, log_file=log_file or getattr(exc, "log_file", None))
    return exit_status(exc)
