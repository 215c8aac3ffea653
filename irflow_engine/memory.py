"""How much host memory a restore on the CPU may use, and how to split work to stay within it.

On the CPU a frame's activations are large: the network keeps its full-resolution skip features,
and its attention projects them to 128-channel q, k and v at every level. Peak memory above the
process at rest, per pixel of one frame, fp32 (2026-11-27, `benchmarks/bench_cpu_memory.py`;
docs/PERF.md), in KiB:

    model, frame                              eager   onnxruntime
    irflow-denoise-s, 512×512, K = 1          2.19    2.68
    irflow-denoise-s, 1280×720, K = 3, ×3     1.93    3.27
    irflow-unet32-d3, 512×512, K = 1          2.67    3.09
    irflow-unet64, 512×512, K = 1             4.13    1.19

so a 12-megapixel photograph needs ~20–40 GB whole, and four 1080p frames per call ~25 GB: more
than many machines have, and the kernel's out-of-memory killer ends the process without a message.
`plan_pass` therefore first lowers the frames per backend call and then, for a frame that does not
fit alone, picks the largest square tile that does (tiling changes results slightly: the linear
attention sees one tile). CUDA is left to its allocator's out-of-memory error, which the engine
retries in tiles.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from .cgroups import cgroup_folders

# Budgeted activation bytes per pixel of a frame on the CPU: the largest measured value above plus
# ~20 % (runs vary by ~10 %). Precisions below fp32 are budgeted the same (the CPU backends compute
# in fp32 mostly).
CPU_BYTES_PER_PIXEL = 5 * 1024
# Share of the memory available (at an engine's first CPU call) that one call may use.
BUDGET_FRACTION = 0.6
# Never tile automatically below this side: smaller tiles cost this model visible quality.
MIN_AUTO_TILE = 256


def available_memory(meminfo: Path = Path("/proc/meminfo"),
                     cgroups: Optional[Sequence[Path]] = None) -> Optional[int]:
    """Bytes of memory this process can still take without swapping or being killed: the system's
    MemAvailable (Linux), lowered to the room left under the cgroup memory limits that apply to it
    (what Docker and Kubernetes enforce, while /proc/meminfo shows the whole host; `cgroups`: the
    folders to read, default `cgroup_folders("memory")`); else half the physical memory; None when
    nothing can be read."""
    system = None
    try:
        with open(meminfo) as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    system = int(line.split()[1]) * 1024
                    break
    except (OSError, ValueError, IndexError):
        pass
    if system is None:
        try:
            system = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2
        except (AttributeError, ValueError, OSError):
            system = None
    folders = cgroup_folders("memory") if cgroups is None else cgroups
    rooms = [room for room in map(cgroup_room, folders) if room is not None]
    if system is not None:
        rooms.append(system)
    return min(rooms) if rooms else None


def cgroup_room(folder: Path) -> Optional[int]:
    """Bytes left under one cgroup folder's memory limit (v2 `memory.max`, or v1
    `memory.limit_in_bytes`), counting reclaimable page cache (inactive files) as free; None
    without a limit."""
    layouts = (("memory.max", "memory.current", "inactive_file"),
               ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"))
    for limit_name, usage_name, cache_key in layouts:
        try:
            limit_text = (folder / limit_name).read_text().strip()
            usage = int((folder / usage_name).read_text())
        except (OSError, ValueError):
            continue
        if limit_text == "max" or not limit_text.isdigit() or int(limit_text) >= 1 << 60:
            return None   # no limit (v1 writes a huge number)
        cache = 0
        try:
            for line in (folder / "memory.stat").read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == cache_key:
                    cache = int(value)
                    break
        except (OSError, ValueError):
            pass
        return max(0, int(limit_text) - max(0, usage - cache))
    return None


def memory_budget(setting: Optional[int]) -> Optional[int]:
    """The byte budget of one call: `setting` when given (0: no limit, returns None), else
    BUDGET_FRACTION of the memory available now (None when it is unknown)."""
    if setting is not None:
        return setting or None
    available = available_memory()
    return None if available is None else int(available * BUDGET_FRACTION)


@dataclass(frozen=True)
class PassPlan:
    """How to run an N×3×H×W batch: frames (or tiles) per backend call, and the tile side (None: whole)."""

    per_call: int
    tile: Optional[int] = None


def plan_pass(height: int, width: int, max_batch: int, budget: Optional[int], multiple: int,
              bytes_per_pixel: int = CPU_BYTES_PER_PIXEL) -> PassPlan:
    """Fit one call's activations within `budget` bytes: up to `max_batch` whole frames per call
    while they fit; else square tiles (a multiple of the network's padding `multiple`, at least
    MIN_AUTO_TILE) as large as fit, one per call."""
    if budget is None:
        return PassPlan(max_batch)
    frame = height * width * bytes_per_pixel
    if frame <= budget:
        return PassPlan(max(1, min(max_batch, budget // frame)))
    side = int(math.isqrt(budget // bytes_per_pixel)) // multiple * multiple
    side = max(side, MIN_AUTO_TILE // multiple * multiple, multiple)
    if side >= max(height, width):   # a tile as large as the frame: whole frames, one per call
        return PassPlan(1)
    return PassPlan(1, side)
