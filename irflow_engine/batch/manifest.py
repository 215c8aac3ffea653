"""The batch manifest: one JSON record per input, rewritten atomically as work completes."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Dict, Iterable, Optional

from .._version import __version__
from ..atomic import atomic_path

STATUSES = ("pending", "done", "skipped", "failed")


class Manifest:
    """`{"version", "started", "updated", "job", "inputs": {src: record}}` at `path`.

    A record is `{"status", "output", "kind", "frames", "seconds", "error"}`, and `"parts"` for
    videos (how many keyframe-aligned parts were restored in parallel; None: in one piece). Every `update`
    rewrites the file (temp file + rename), so a crash leaves the last complete state.
    """

    def __init__(self, path, job: Optional[dict] = None):
        self.path = Path(path)
        self.job = job or {}
        self.records: Dict[str, dict] = {}
        self.started = time.time()
        self._lock = threading.Lock()

    def add(self, items: Iterable, status: str) -> None:
        for item in items:
            self.records[item.src] = {"status": status, "output": item.dst, "kind": item.kind,
                                      "frames": None, "seconds": None, "error": None}
            if item.kind == "video":
                self.records[item.src]["parts"] = None
        self.write()

    def update(self, src: str, **fields) -> None:
        if fields.get("status", "pending") not in STATUSES:
            raise ValueError(f"unknown status {fields['status']!r}")
        with self._lock:
            self.records[src].update(fields)
            self.write()

    def counts(self) -> Dict[str, int]:
        out = {s: 0 for s in STATUSES}
        for r in self.records.values():
            out[r["status"]] += 1
        return out

    def write(self) -> None:
        data = {"version": __version__, "started": self.started, "updated": time.time(), "job": self.job,
                "counts": self.counts(), "inputs": self.records}
        with atomic_path(self.path) as tmp:
            Path(tmp).write_text(json.dumps(data, indent=2))
