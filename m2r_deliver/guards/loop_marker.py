"""Our loop marker: sites that stamp handled mail upstream (procmail's
``formail -A "X-Loop: …"``) name the stamp in [guard] loop_markers."""

from __future__ import annotations

from ..config import Settings
from ..mail import Mail
from .addresses import first_match


class LoopMarker:
    name = "loop_marker"
    description = "an X-Loop value named in [guard] loop_markers"
    trust_overrides = False

    def check(self, mail: Mail, settings: Settings) -> str | None:
        values = [value.strip() for value in mail.header_all("x-loop")]
        marker = first_match(values, settings.guard.loop_markers)
        return f"X-Loop: {marker}" if marker else None
