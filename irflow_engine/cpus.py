"""How many CPU threads a restore on the CPU uses: the CPUs this process may run on, lowered to a
container's CPU quota.

torch (through OpenMP) starts one thread per CPU of the process's affinity mask, but a container's
CPU *quota* (Docker's `--cpus`, a Kubernetes CPU limit: cgroup v2 `cpu.max`, v1
`cpu.cfs_quota_us`) is not a mask: a pod limited to 2 CPUs on a 64-core host gets 64 threads that
the kernel throttles in turn and that wait for each other (measured on 2 cores under a 1-CPU quota:
2 threads 1.3–1.5× slower than 1, docs/PERF.md). `fit_threads` lowers torch's thread count
to the quota (or sets the count asked for); ONNX Runtime sessions then take the same count. The
quota may be set on the process's cgroup or on any ancestor (`irflow_engine.cgroups`).
"""

from __future__ import annotations

import logging
import math
import os
from pathlib import Path
from typing import Optional, Sequence

from .cgroups import cgroup_folders

log = logging.getLogger(__name__)


def affinity_cpus() -> int:
    """CPUs in this process's affinity mask (all CPUs where the mask cannot be read)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def cgroup_cpu_quota(folder: Path) -> Optional[float]:
    """CPUs' worth of time one cgroup folder allows per period (v2 `cpu.max`, or v1
    `cpu.cfs_quota_us` over `cpu.cfs_period_us`); None without a quota."""
    try:
        quota, _, period = (folder / "cpu.max").read_text().strip().partition(" ")
        return None if quota == "max" else int(quota) / int(period or 100000)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((folder / "cpu.cfs_quota_us").read_text())
        period = int((folder / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError):
        return None
    return None if quota <= 0 or period <= 0 else quota / period


def available_cpus(cgroups: Optional[Sequence[Path]] = None) -> int:
    """Threads worth running: the affinity mask's CPUs, at most the smallest CPU quota that applies
    (`cgroups`: the folders to read, default `cgroup_folders("cpu")`) rounded up; at least 1."""
    cpus = affinity_cpus()
    folders = cgroup_folders("cpu") if cgroups is None else cgroups
    for quota in map(cgroup_cpu_quota, folders):
        if quota is not None:
            cpus = min(cpus, max(1, math.ceil(quota - 1e-9)))
    return cpus


def fit_threads(requested: Optional[int] = None) -> int:
    """Set torch's intra-op CPU threads and return the count in use.

    `requested`: exactly that many. None: torch's count, lowered to `available_cpus()` when it is
    higher (a CPU quota) unless OMP_NUM_THREADS chose it.
    """
    import torch

    if requested is not None:
        if not isinstance(requested, int) or isinstance(requested, bool) or requested < 1:
            raise ValueError(f"threads must be a positive integer, got {requested!r}")
        if torch.get_num_threads() != requested:
            torch.set_num_threads(requested)
        return requested
    current = torch.get_num_threads()
    if os.environ.get("OMP_NUM_THREADS"):
        return current
    cpus = available_cpus()
    if current > cpus:
        log.info("using %d CPU threads, not %d: this process may use %d CPUs (its CPU quota)", cpus, current, cpus)
        torch.set_num_threads(cpus)
        return cpus
    return current
