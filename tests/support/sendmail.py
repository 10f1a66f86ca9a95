"""A stand-in for the sendmail program, for the tests of the mail the program sends."""

from __future__ import annotations


class SendmailStandIn:
    """A sendmail program: each run's argv and message kept, its exit status set by the test."""

    def __init__(self, directory):
        self.dir = directory
        self.program = directory / "sendmail"
        self.program.write_text('#!/bin/sh\nn=$(ls "$0.d" | wc -l)\nmkdir -p "$0.d/$n"\n'
                                'printf "%s\\n" "$@" > "$0.d/$n/argv"\ncat > "$0.d/$n/message"\n'
                                'exit $(cat "$0.status")\n')
        self.program.chmod(0o755)
        (directory / "sendmail.d").mkdir()
        self.exits(0)

    def exits(self, status: int) -> None:
        (self.dir / "sendmail.status").write_text(str(status))

    def runs(self) -> list[tuple[list[str], bytes]]:
        done = sorted((self.dir / "sendmail.d").iterdir(), key=lambda p: int(p.name))
        return [((run / "argv").read_text().splitlines(), (run / "message").read_bytes()) for run in done]
