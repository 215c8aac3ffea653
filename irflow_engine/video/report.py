"""The progress bar while a video or pipe runs, and the summary after it."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

from .pipeline import StageClock


@dataclass
class VideoReport:
    """What a run did: frames, wall time, and each stage's busy time."""

    frames: int = 0
    seconds: float = 0.0
    width: int = 0
    height: int = 0
    stages: Dict[str, StageClock] = field(default_factory=dict)
    output: Optional[Path] = None
    notes: List[str] = field(default_factory=list)

    @property
    def fps(self) -> float:
        """End-to-end frames per second (wall time of the pipeline, model loading excluded)."""
        return self.frames / self.seconds if self.seconds > 0 else 0.0

    def stage_fps(self) -> Dict[str, float]:
        return {name: c.fps for name, c in self.stages.items() if c.frames}

    def summary(self) -> str:
        parts = [f"{self.frames} frames ({self.width}x{self.height}) in {self.seconds:.1f} s: "
                 f"{self.fps:.2f} fps end to end"]
        stages = ", ".join(f"{name} {c.fps:.1f} fps ({1e3 * c.seconds / c.frames:.1f} ms/frame)"
                           for name, c in self.stages.items() if c.frames)
        if stages:
            parts.append(f"stages (busy time): {stages}")
        return "; ".join(parts)

    def as_dict(self) -> dict:
        return {"frames": self.frames, "seconds": self.seconds, "fps": self.fps, "width": self.width,
                "height": self.height, "output": str(self.output) if self.output else None,
                "stages": {n: {"seconds": c.seconds, "frames": c.frames, "fps": c.fps if c.frames else None}
                           for n, c in self.stages.items()}}


class Progress:
    """A tqdm bar of frames on stderr (frames/s, ETA when the total is known); silent if disabled."""

    def __init__(self, total: Optional[int], enabled: bool, desc: str = "restore"):
        self.t0 = time.perf_counter()
        self.bar = None
        if enabled:  # a tqdm, even disabled, starts its monitor thread
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="frame", desc=desc, file=sys.stderr, dynamic_ncols=True,
                            smoothing=0.1)

    def update(self, n: int) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def close(self) -> float:
        """Close the bar; the seconds since it started."""
        if self.bar is not None:
            self.bar.close()
        return time.perf_counter() - self.t0
