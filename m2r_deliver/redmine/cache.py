"""The name cache: what Redmine answered about names, users, roles and limits, kept a
short time in one JSON file in the state directory."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any


class NameCache:
    """Names → ids per kind (trackers, statuses, …), kept ``ttl`` seconds in one JSON file.

    A name missing from a fresh-enough list is looked up again once before it counts as
    unknown, so a tracker added in Redmine a minute ago is found.
    """

    def __init__(self, path: Path, ttl: float, url: str):
        self.path, self.ttl, self.url = path, ttl, url
        self.data = self._load()

    def _load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) and data.get("url") == self.url else {}

    def get(self, kind: str) -> dict[str, Any] | None:
        entry = self.data.get("kinds", {}).get(kind)
        if entry and self._fresh(entry):
            return entry["ids"]
        return None

    def _fresh(self, entry: dict[str, Any]) -> bool:
        return time.time() - entry.get("at", 0) < self.ttl

    def put(self, kind: str, ids: dict[str, Any]) -> None:
        """Store *ids* under *kind*, forgetting whatever has expired."""
        kinds = {k: v for k, v in self.data.get("kinds", {}).items() if self._fresh(v)}
        self._write({**kinds, kind: {"at": time.time(), "ids": ids}})

    def drop(self, kind: str) -> None:
        self._write({k: v for k, v in self.data.get("kinds", {}).items() if k != kind})

    def _write(self, kinds: dict[str, Any]) -> None:
        self.data = {"url": self.url, "kinds": kinds}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=self.path.parent, prefix=".names.")
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                json.dump(self.data, out, ensure_ascii=False)
            os.replace(tmp, self.path)
        except OSError:
            pass  # a cache that cannot be written only costs requests
