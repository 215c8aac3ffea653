"""Time a CPU restore with torch's threads left to the engine (threads=None) and set by hand.

Run it inside a cgroup with a CPU quota to see what oversubscription costs, e.g. as root on
cgroup v1 (v2: write "100000 100000" to cpu.max instead):

    mkdir /sys/fs/cgroup/cpu/q && echo 100000 > /sys/fs/cgroup/cpu/q/cpu.cfs_quota_us
    (echo $BASHPID > /sys/fs/cgroup/cpu/q/cgroup.procs; python benchmarks/bench_cpu_threads.py)

Prints the median of 3 timed calls (after one warm-up) for each backend and thread setting.
"""

import argparse
import time

import numpy as np
import torch

from irflow_engine import Engine, cpus


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--size", type=int, default=512, help="square frame side (default: 512)")
    p.add_argument("--threads", default="1,2,auto,2", help="settings to time, in order (default: 1,2,auto,2)")
    p.add_argument("--backends", default="eager,onnxruntime")
    args = p.parse_args()
    print(f"available_cpus() = {cpus.available_cpus()}, affinity {cpus.affinity_cpus()}, "
          f"torch threads at start {torch.get_num_threads()}")
    x = (np.random.default_rng(0).random((args.size, args.size, 3)) * 255).astype(np.uint8)
    for backend in args.backends.split(","):
        for setting in args.threads.split(","):
            threads = None if setting == "auto" else int(setting)
            engine = Engine.from_checkpoint(args.model, backend=backend, steps=1, threads=threads)
            used = torch.get_num_threads()
            engine.restore(x)
            times = []
            for _ in range(3):
                t0 = time.perf_counter()
                engine.restore(x)
                times.append(time.perf_counter() - t0)
            print(f"{backend:12s} threads={setting:4s} -> {used}: median {sorted(times)[1]:.2f} s")


if __name__ == "__main__":
    main()
