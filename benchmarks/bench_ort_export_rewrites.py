"""ONNX Runtime on the CPU: the sampler graph as the exporter writes it now, against the graph
with one export-only rewrite in `models.unet` undone (`--variant`):

- softmax: the attention's softmax over channels as one Softmax node (axis -2) instead of the
  max/exp/sum/divide form (`softmax_over_channels`);
- factored: the attention in the reference's order (v projected, k·vᵀ context, contextᵀ·q
  output, then the 1×1 output projection) instead of `LinearAttention._factored`.

Both graphs are exported in this process and timed alternately (A B A B ...), so load from other
processes on a shared machine hits both alike; prints the median of each and their maximum
difference.
"""

import argparse
import statistics
import time

import numpy as np
import torch

from irflow_engine import Engine
from irflow_engine.export.onnx import export_graph, ort_session
from irflow_engine.models import unet


# --variant -> (owner in models.unet, attribute, its plain form, label)
UNDO = {
    "softmax": (unet, "softmax_over_channels", lambda q: q.softmax(dim=-2), "Softmax axis -2 (before)"),
    "factored": (unet.LinearAttention, "_factored", unet.LinearAttention._reference_order,
                 "reference-order attention (before)"),
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--model", default="irflow-denoise-s")
    p.add_argument("--size", default="448x304", help="WxH (default: 448x304)")
    p.add_argument("--steps", type=int, default=1)
    p.add_argument("--rounds", type=int, default=8)
    p.add_argument("--variant", choices=sorted(UNDO), default="softmax", help="the rewrite to undo (default: softmax)")
    args = p.parse_args()
    w, h = map(int, args.size.split("x"))
    engine = Engine.from_checkpoint(args.model, steps=args.steps)
    model, schedule = engine.checkpoint.build_model(), engine.schedule
    owner, name, plain, label = UNDO[args.variant]
    written = getattr(owner, name)
    graphs = {"as exported now": export_graph(model, schedule)}
    setattr(owner, name, plain)
    try:
        graphs[label] = export_graph(model, schedule)
    finally:
        setattr(owner, name, written)
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
