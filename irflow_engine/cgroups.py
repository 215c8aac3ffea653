"""Where the cgroup limits that apply to this process live (Linux), for `memory.py` and `cpus.py`.

A container's memory limit or CPU quota may sit on the process's own cgroup or on any ancestor
(a Kubernetes pod's limit is on the pod, its containers below it). `/proc/self/cgroup` names the
process's cgroup in each hierarchy: `0::/path` for cgroup v2, `N:cpu,cpuacct:/path` for a v1
controller. Inside a cgroup namespace the path is `/` and the mount is the container's own
cgroup; without one (Docker on cgroup v1 bind-mounts the container's cgroup over the mount) the
path may not exist under the mount, and the mount itself is the nearest folder that does.
"""

from __future__ import annotations

from pathlib import Path
from typing import List

PROC_CGROUP = Path("/proc/self/cgroup")
MOUNT = Path("/sys/fs/cgroup")


def cgroup_folders(controller: str, proc_cgroup: Path = PROC_CGROUP, mount: Path = MOUNT) -> List[Path]:
    """Folders whose `controller` ("memory", "cpu") limits apply to this process: its own cgroup's
    and each ancestor's up to the mount, nearest first, those that exist; v2's hierarchy first,
    then v1's. Without /proc/self/cgroup: the mount (v2) and mount/<controller> (v1)."""
    try:
        lines = proc_cgroup.read_text().splitlines()
    except OSError:
        lines = ["0::/", f"1:{controller}:/"]
    folders: List[Path] = []
    for line in sorted(lines, key=lambda entry: not entry.startswith("0::")):   # v2 first
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        _, controllers, path = fields
        if controllers == "":
            base = mount if (mount / "cgroup.controllers").exists() else mount / "unified"
        elif controller in controllers.split(","):
            base = mount / controllers
            if not base.is_dir():
                base = mount / controller
        else:
            continue
        parts = [p for p in path.split("/") if p]
        for depth in range(len(parts), -1, -1):
            folder = base.joinpath(*parts[:depth])
            if folder.is_dir() and folder not in folders:
                folders.append(folder)
    return folders
