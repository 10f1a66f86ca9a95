"""The console script's entry point: what must hold before anything else is imported.

- A SIGTERM from the first instruction on ends the process with 75 (the mail is kept),
  not by the signal: the imports take a noticeable time, and a mail system that stops
  a delivery then must find the mail still queued. The delivery pass installs its own
  handler later, which records the attempt before the process ends. A handler's
  exception that Python cannot pass on where the signal lands (a weakref callback) ends
  the process with 75 too, printing nothing.
- A memory ceiling (RLIMIT_AS): a mail that needs more memory than that to be read
  makes Python raise MemoryError, which is classified, recorded and in the end
  quarantined, instead of growing until the kernel's OOM killer ends the process (or
  picks the mail system or Redmine instead).
- No library's own log record reaches stderr: Python's logging, with nothing configured,
  would print warnings there. It is silenced where a library that logs is loaded
  (``log.quiet_libraries``), so a mail that loads none does not pay for logging.
- Python's cyclic garbage collector waits for 100 000 new objects, not 700: a delivery
  makes fewer than half that (the imports most of them, none of them garbage), so it
  never stops to look for cycles; a mail that makes more still has its cycles collected.
- The process ends as soon as the delivery has returned its status: the exit handlers
  run (logging's among them), stdout and stderr are flushed, and the interpreter's
  tear-down of every module is skipped. Nothing is left to it: the ledger commits, the
  log and the quarantine write, each before the delivery returns. On a filed mail the
  tear-down was a tenth of the process's work.
"""

from __future__ import annotations

import os
import signal
import sys

TYPE_CHECKING = False  # typing itself is imported later, by what needs it
if TYPE_CHECKING:
    from typing import NoReturn

#: Address space the process may use. A delivery of a 50 MB mail peaks far below it (see
#: docs/fuzzing.md); a mail that needs more is refused as the mail's fault.
MEMORY_LIMIT = 2 << 30
#: The same as errors.EX_TEMPFAIL, spelled here so that nothing is imported before the handler.
_TEMPFAIL = 75
#: New objects (less those freed) after which the garbage collector looks for cycles.
COLLECT_AFTER = 100_000


def _stopped(signum, frame):
    raise SystemExit(_TEMPFAIL)


def _unraisable(unraisable) -> None:
    """An exception Python cannot pass on, and would print on stderr and drop.

    A signal handler's, raised in a weakref callback (the import system uses them), would
    let the process go on as if the signal had not come. It ends now, with 75 and nothing
    printed: the mail stays with the mail system, and an attempt begun is found unfinished
    by the next one (as after a kill), which looks for what it may have filed.

    Any other (a ``__del__`` that fails, say) is dropped as Python drops it, but printed
    only where stderr is a terminal; otherwise it is one line in syslog (facility mail), as
    our own fault: a mail system takes a delivery agent's output for a failure."""
    if isinstance(unraisable.exc_value, (SystemExit, KeyboardInterrupt)):  # our handlers' exceptions
        os._exit(_TEMPFAIL)
    try:
        from .sinks import is_terminal, to_syslog

        if is_terminal(sys.stderr):
            sys.__unraisablehook__(unraisable)
            return
        where = getattr(unraisable.object, "__qualname__", None) or type(unraisable.object).__qualname__
        to_syslog(f"fault=ours ignored={unraisable.exc_type.__qualname__} in={where}", failed=True)  # not its text
    except Exception:  # a hook's own failure would be printed: nothing may escape it
        pass


def stop_on_sigterm() -> None:
    """From here on a SIGTERM ends the process with 75, wherever it arrives."""
    sys.unraisablehook = _unraisable
    signal.signal(signal.SIGTERM, _stopped)


def main() -> NoReturn:
    stop_on_sigterm()
    import gc  # built in, like atexit below: loaded once SIGTERM is handled

    gc.set_threshold(COLLECT_AFTER, *gc.get_threshold()[1:])
    limit_memory(MEMORY_LIMIT)
    from .cli import main as run

    leave(run())


def leave(status: int) -> NoReturn:
    """End the process with *status* now: the exit handlers run and stdout and stderr are
    flushed, as at a normal exit, but the modules are not torn down one by one."""
    import atexit

    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:  # started with the descriptor closed
                stream.flush()
        except (OSError, ValueError):  # a reader gone, or a stream closed: nothing more to say
            pass
    os._exit(status)


def limit_memory(limit: int) -> None:
    """Lower the soft address-space limit to *limit* bytes (never raise it)."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        if hard != resource.RLIM_INFINITY:
            limit = min(limit, hard)
        if soft == resource.RLIM_INFINITY or soft > limit:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    except (ImportError, ValueError, OSError):  # no such limit here: run without a ceiling
        pass


if __name__ == "__main__":
    sys.exit(main())
