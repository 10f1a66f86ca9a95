"""Bounces and delivery reports, decided by their structure.

flufl.bounce never decides alone: it also finds "failed recipients" in a request whose
author pasted a bounce into it. It only confirms a sign that is not decisive by itself,
and is imported only then, so most mail never pays for it.
"""

from __future__ import annotations

from ..config import Settings
from ..mail import Mail
from .bounce_signs import SIGNS, Sign


class Bounce:
    name = "bounce"
    description = "a bounce or delivery report: a decisive structural sign, or a weaker one flufl.bounce confirms"
    trust_overrides = False

    def __init__(self, signs: tuple[Sign, ...] = SIGNS):
        self.signs = signs

    def check(self, mail: Mail, settings: Settings) -> str | None:
        weaker = []
        for sign in self.signs:
            shown = sign.find(mail)
            if shown and sign.decisive:
                return shown
            if shown:
                weaker.append(shown)
        if not weaker:
            return None
        failed = failed_recipients(mail)
        if not failed:
            return None
        return f"{weaker[0]}; flufl.bounce found {len(failed)} failed recipient(s)"


def failed_recipients(mail: Mail) -> set[bytes]:
    """The addresses flufl.bounce reports as failed, temporarily or permanently. A detector
    that raises on odd input is no confirmation (and must not fail the delivery).

    flufl.bounce logs such an exception itself before raising it; with no logging set up,
    Python would print it on stderr, which some mail systems count as a failed delivery."""
    from ..log import quiet_libraries

    quiet_libraries("flufl.bounce")
    from flufl.bounce import all_failures

    try:
        temporary, permanent = all_failures(mail.message)
    except Exception:  # flufl.bounce's detectors raise whatever their parsing meets
        return set()
    return set(temporary) | set(permanent)

