"""Command line: rdm-mailhandler.rb's flags and ours → Settings → a subcommand.

``m2r-deliver [options]`` delivers the mail on stdin; ``m2r-deliver check`` asks Redmine
whether the configuration will work; ``replay [MAILDIR]`` delivers quarantined mail again;
``status`` shows what the ledger holds. Usage mistakes in delivery mode are configuration
errors: logged, silent, exit 75, so the mail waits for the fix — unless stdin is a terminal:
then a person typed the command, and gets the usage and exit 2 (no mail system runs a
delivery agent with a terminal on stdin).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any, Sequence

from . import __version__, log
from .config import load
from .config.kinds import Duration
from .errors import EX_CHECK_FAILED, EX_CLOSED_PIPE, EX_USAGE, ConfigError, DeliveryError, classify, exit_status
from .states import Decision

SUBCOMMANDS = ("check", "replay", "status")

DESCRIPTIONS = {
    "deliver": "Deliver one RFC 822 mail from stdin into Redmine as an issue. "
               "Exit 0: filed or deliberately dropped; 75: keep the mail and retry later.",
    "check": "Check the config against Redmine: the key, the project and every name it uses, the state "
             "dir, where the log goes. One line per finding (ok, warn, FAIL); exit 1 when anything failed.",
    "replay": "Deliver the quarantined mail again, once its cause is fixed (default: the state dir's quarantine).",
    "status": "Show what the ledger holds: counts by outcome, the quarantine, mail in retry, recent outcomes.",
}
EPILOG = ("commands: 'm2r-deliver check' checks the config against Redmine; 'm2r-deliver replay [MAILDIR]' "
          "delivers quarantined mail again; 'm2r-deliver status' shows the ledger. "
          "'m2r-deliver COMMAND --help' describes each.")


class Usage(Exception):
    """A mistake on the command line of a person at a terminal: usage, exit 2."""


class _Parser(argparse.ArgumentParser):
    #: A person reads the answer (a terminal, or a subcommand); else the mail system does.
    interactive = False

    def error(self, message: str):  # argparse would exit 2: a bounce for Postfix
        if self.interactive:
            raise Usage(message)
        raise ConfigError(f"command line: {message}")

    def add_argument(self, *args, **kwargs):
        # argparse checks each option's metavar with a help formatter, which sizes itself
        # to the terminal through shutil (imported for that alone); the check needs no width.
        self._checking = True
        try:
            return super().add_argument(*args, **kwargs)
        finally:
            self._checking = False

    def _get_formatter(self):
        if getattr(self, "_checking", False):
            return self.formatter_class(prog=self.prog, width=80)
        return super()._get_formatter()


def build_parser(command: str = "deliver", interactive: bool = False) -> argparse.ArgumentParser:
    p = _Parser(
        prog="m2r-deliver" if command == "deliver" else f"m2r-deliver {command}",
        description=DESCRIPTIONS[command],
        epilog=EPILOG if command == "deliver" else None,
    )
    p.interactive = interactive
    if command == "status":
        p.add_argument("--json", action="store_true", help="print the status as one JSON object")
        p.add_argument("--check", action="store_true",
                       help="for monitoring: one line, exit 0 all fine, 1 mail held or in quarantine, "
                       "2 mail in retry for longer than --max-retry-age or the last attempt failed")
        p.add_argument("--max-retry-age", metavar="DURATION", default="1h",
                       help="with --check: mail in retry longer than this is an alarm (default 1h; 30m, 12h, 2d…)")
    if command == "replay":
        p.add_argument("maildir", nargs="?", metavar="MAILDIR",
                       help="Maildir to replay (default: <state dir>/quarantine)")
    p.add_argument("-V", "--version", action="version", version=f"m2r-deliver {__version__}")
    p.add_argument("-v", "--verbose", action="store_true", help="print an account of the delivery on stderr")
    p.add_argument("--config", metavar="PATH", help="TOML config (default $XDG_CONFIG_HOME/m2r-deliver/config.toml)")
    if command == "deliver":
        p.add_argument("--dry-run", action="store_true", help="decide and resolve everything, write nothing, "
                       "print the planned Redmine change as JSON")
    r = p.add_argument_group("Redmine (rdm-mailhandler.rb compatible)")
    r.add_argument("-u", "--url", help="URL of the Redmine server")
    r.add_argument("-k", "--key", help="Redmine API key (prefer --key-file or the config: argv is public)")
    r.add_argument("--key-file", metavar="FILE", help="file that holds the API key")
    r.add_argument("--no-check-certificate", action="store_true", help="do not verify the server's certificate")
    r.add_argument("--certificate-bundle", metavar="FILE", help="CA bundle to verify the server with")
    i = p.add_argument_group("issue attributes (override [issue] in the config)")
    i.add_argument("-p", "--project", help="identifier of the target project")
    i.add_argument("-s", "--status", help="name of the target status")
    i.add_argument("-t", "--tracker", help="name of the target tracker")
    i.add_argument("--category", help="name of the target category")
    i.add_argument("--priority", help="name of the target priority")
    i.add_argument("--assigned-to", metavar="ASSIGNEE", help="assignee (login, e-mail or group name)")
    i.add_argument("--fixed-version", metavar="VERSION", help="name of the target version")
    i.add_argument("--private", action="store_true", default=None, help="create new issues as private")
    i.add_argument("-o", "--allow-override", metavar="ATTRS",
                   help="attributes the mail's keywords may set, comma-separated: tracker, priority, …, "
                   "custom_field:NAME, custom_fields, or all")
    i.add_argument("--project-from-subaddress", metavar="ADDR",
                   help="take the project from the sub-address of ADDR (ADDR+project@domain) among the recipients")
    s = p.add_argument_group("sender handling (with an administrator's key mail is filed as its sender)")
    s.add_argument("--unknown-user", metavar="ACTION", choices=("accept", "ignore", "create"),
                   help="a sender the gateway cannot file as (no account, locked, no permission): 'accept' "
                   "files as [sender] fallback_user or the key's user (default), 'ignore' drops the mail, "
                   "'create' makes the account first")
    s.add_argument("--default-group", metavar="GROUPS", help="comma-separated groups for created users")
    s.add_argument("--no-permission-check", action="store_true", default=None,
                   help="act as the sender without first checking their roles in the project; "
                   "Redmine's own refusal still sends the mail to the fallback")
    s.add_argument("--no-account-notice", action="store_true", default=None,
                   help="do not mail created users their login and password")
    s.add_argument("--no-notification", action="store_true", default=None,
                   help="created users get no notification mail (mail_notification none)")
    return p


def overrides_from(args: argparse.Namespace) -> dict[str, dict[str, Any]]:
    """The flags that were given, as config sections: flags win over the file."""
    allow = args.allow_override.split(",") if args.allow_override else None
    return {
        "redmine": {
            "url": args.url,
            "key": args.key,
            "key_file": args.key_file,
            "verify": False if args.no_check_certificate else None,
            "ca_bundle": args.certificate_bundle,
        },
        "issue": {
            "project": args.project,
            "status": args.status,
            "tracker": args.tracker,
            "category": args.category,
            "priority": args.priority,
            "assigned_to": args.assigned_to,
            "fixed_version": args.fixed_version,
            "private": args.private,
            "allow_override": allow,
            "project_from_subaddress": args.project_from_subaddress,
        },
        "sender": {
            "unknown_user": args.unknown_user,
            "default_group": args.default_group,
            "permission_check": False if args.no_permission_check else None,
            "account_notice": False if args.no_account_notice else None,
            "notification": False if args.no_notification else None,
        },
        "log": {"verbose": True if args.verbose else None},
    }


def main(argv: Sequence[str] | None = None, env: dict[str, str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    env = dict(os.environ if env is None else env)
    command = argv.pop(0) if argv and argv[0] in SUBCOMMANDS else "deliver"
    verbose = "-v" in argv or "--verbose" in argv
    at_terminal = _is_terminal(sys.stdin)
    try:
        status = _run(command, argv, env, verbose, at_terminal)
        sys.stdout.flush()  # here, where a closed pipe can still be caught, not at exit
        return status
    except BrokenPipeError:  # `m2r-deliver status | head`: the reader has gone, nothing more to say
        _silence_stdout()
        return EX_CLOSED_PIPE


def _run(command: str, argv: list[str], env: dict[str, str], verbose: bool, at_terminal: bool) -> int:
    parser = build_parser(command, interactive=at_terminal or command in SUBCOMMANDS)
    alarm_after: float | None = None
    try:
        if command == "deliver" and at_terminal and argv and not argv[0].startswith("-"):
            parser.error(f"unknown command {argv[0]!r} (the commands are {', '.join(SUBCOMMANDS)}; "
                         "without one, m2r-deliver delivers the mail on its stdin)")
        args = parser.parse_args(argv)
        if command == "deliver" and at_terminal:
            print(f"{parser.prog}: reads one mail on stdin, as the mail system runs it (m2r-deliver < message.eml); "
                  f"nothing read, nothing recorded. Commands: {', '.join(SUBCOMMANDS)}; --help for more.",
                  file=sys.stderr)
            return EX_USAGE
        alarm_after = _max_retry_age(parser, args) if command == "status" and args.check else None
        settings = load(args.config, overrides_from(args), env)
    except Usage as exc:
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

        return replay(settings, Path(os.path.expanduser(args.maildir)) if args.maildir else None, sys.stdout)
    if command == "status":
        from .status import status

        return status(settings, sys.stdout, as_json=args.json, alarm_after=alarm_after)
    try:
        from .pipeline import Run, deliver

        return deliver(sys.stdin.buffer, sys.stdout, sys.stderr, settings,
                       Run(dry_run=args.dry_run, verbose=settings.verbose))
    except Exception as exc:  # a broken installation, or a bug outside the pass's own net: keep the mail
        return _early_failure(command, classify(exc), verbose, settings.log_file)


def _max_retry_age(parser: argparse.ArgumentParser, args: argparse.Namespace) -> float:
    problem = Duration().problem(args.max_retry_age)
    if problem:
        parser.error(f"--max-retry-age: {problem}")
    return Duration().convert(args.max_retry_age)


def _is_terminal(stream) -> bool:
    try:
        return stream is not None and stream.isatty()
    except (AttributeError, ValueError, OSError):
        return False


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
