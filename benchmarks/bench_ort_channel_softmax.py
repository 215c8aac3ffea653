"""ONNX Runtime on the CPU: the attention's softmax over channels as one Softmax node (axis -2)
against the max/exp/sum/divide form the exporter now writes (`models.unet.softmax_over_channels`).

Both sampler graphs are exported in this process and timed alternately (A B A B ...), so load
from other processes on a shared machine hits both alike; prints the median of each and their
maximum difference.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from irflow_engine import Engine
from irflow_engine.export.onnx import export_graph, ort_session
from irflow_engine.models import unet


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--size", default="448x304", help="WxH (default: 448x304)")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    args = p.parse_args()
    w, h = map(int, args.size.split("x"))
    engine = Engine.from_checkpoint(args.model, steps=args.steps)
    model, schedule = engine.checkpoint.build_model(), engine.schedule
    written = unet.softmax_over_channels
    graphs = {"written out (now)": export_graph(model, schedule)}
    unet.softmax_over_channels = lambda q: q.softmax(dim=-2)
    try:
        graphs["Softmax axis -2 (before)"] = export_graph(model, schedule)
    finally:
        unet.softmax_over_channels = written
    sessions = {name: ort_session(g, threads=torch.get_num_threads()) for name, g in graphs.items()}
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    outs, times = {}, {name: [] for name in sessions}
    for name, s in sessions.items():   # warm-up
        outs[name] = s.run(None, {s.get_inputs()[0].name: x})[0]
    for _ in range(args.rounds):
        for name, s in sessions.items():
            t0 = time.perf_counter()
            s.run(None, {s.get_inputs()[0].name: x})
            times[name].append(time.perf_counter() - t0)
    a, b = outs.values()
    print(f"{args.model} {w}x{h} K={args.steps}, {torch.get_num_threads()} threads, {args.rounds} alternating rounds")
    for name, ts in times.items():
        print(f"  {name:26s} median {1e3 * statistics.median(ts):8.1f} ms  (min {1e3 * min(ts):.1f})")
    print(f"  max |difference| between the two outputs: {float(np.abs(a - b).max()):.2e}")


if __name__ == "__main__":
    main()
