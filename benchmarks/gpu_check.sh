#!/usr/bin/env bash
# One-shot GPU check (run on a machine with a CUDA GPU, from the repository root):
#   1. build and install the package into the current Python (no network needed),
#   2. run the test suite there (CUDA tests included),
#   3. check the fused "triton" backend against eager fp32 (fp16 <= 5e-3, bf16 <= 2e-2 relative
#      error), its CUDA-graph cache and threads, and profile one loop kernel by kernel; check the
#      pixel-format extension's CUDA path against its CPU path,
#   4. time irflow-unet64 at 1280x720 and 1920x1080, K = 1 and 3: eager fp32 / eager fp16 /
#      triton fp16 / triton bf16 in one process, torch.compile fp16 (+ CUDA graph) in its own
#      processes under a time limit (its compile time dominates), and print one table last.
# Usage: bash benchmarks/gpu_check.sh [OUT_DIR]   (JSON and logs go to OUT_DIR, default ./gpu_out)
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_out}}"
mkdir -p "$out"
py="${PYTHON:-python3}"

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import torch, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda)"
for mod in numpy safetensors PIL tqdm pytest; do
  "$py" -c "import $mod" 2>/dev/null || echo "missing python module: $mod (tests needing it will fail)"
done

echo "== build"
t0=$(date +%s)
"$py" -m pip install -v --no-build-isolation --no-deps -e . > "$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; echo "BUILD FAILED"; exit 1; }
grep -E "irflow: CUDA path|irflow: OpenMP" "$out/build.log" | sed 's/^ *//'
echo "built in $(( $(date +%s) - t0 ))s"

echo "== tests"
"$py" -m pytest -q -x -p no:cacheprovider tests 2>&1 | tail -15

echo "== triton backend check"
t0=$(date +%s)
timeout "${TRITON_CHECK_TIMEOUT:-180}" "$py" benchmarks/triton_check.py --profile \
  --json "$out/triton_check.json" 2> "$out/triton_check.err" | tee "$out/triton_check.log" \
  || { tail -20 "$out/triton_check.err"; echo "TRITON CHECK FAILED (or timed out)"; }
echo "triton check in $(( $(date +%s) - t0 ))s"

echo "== pixel formats: CUDA path vs CPU path"
timeout "${PIXFMT_CHECK_TIMEOUT:-120}" "$py" benchmarks/gpu_check_pixfmt.py > "$out/pixfmt_check.log" 2>&1 \
  || echo "PIXFMT CHECK FAILED (or timed out)"
tail -25 "$out/pixfmt_check.log"

echo "== benchmark"
res="1280x720,1920x1080"
# Each benchmark process gets at most its own limit and what is left of DEADLINE_S (seconds since
# the script started, default 540), so the whole check stays under 10 minutes; one that cannot get
# a minute is skipped and its rows are missing from the table.
deadline="${DEADLINE_S:-540}"
bench() {  # bench NAME TIMEOUT_S ARGS...: one irflow-bench-latency process, JSON to $out/bench_NAME.json
  local name="$1" limit="$2"; shift 2
  local left=$(( deadline - SECONDS ))
  (( left < limit )) && limit=$left
  if (( limit < 60 )); then echo "bench $name SKIPPED: ${left}s left of DEADLINE_S=$deadline"; return; fi
  local t0; t0=$(date +%s)
  timeout "$limit" "$py" -m irflow_engine.bench --model irflow-unet64 --device cuda --resolution "$res" \
    --iters 10 --json "$out/bench_$name.json" "$@" > "$out/bench_$name.log" 2> "$out/bench_$name.err" \
    || { tail -5 "$out/bench_$name.err"; echo "bench $name FAILED or timed out after ${limit}s"; }
  echo "bench $name: $(( $(date +%s) - t0 ))s"
}
# The fused backend and its eager baselines in one process (same card, same run).
bench main "${BENCH_TIMEOUT:-200}" --steps 1,3 --runs eager:fp32,eager:fp16,triton:fp16,triton:bf16
# torch.compile + CUDA graph: one compilation per (K, resolution); K = 3 first, as it is the target.
bench compile_k3 "${COMPILE_TIMEOUT:-240}" --steps 3 --runs compile:fp16
bench compile_k1 "${COMPILE_TIMEOUT:-240}" --steps 1 --runs compile:fp16

# One table from whatever finished, printed last.
"$py" - "$out"/bench_main.json "$out"/bench_compile_k3.json "$out"/bench_compile_k1.json <<'PY'
import json, os, sys
from irflow_engine.bench import format_table
rows, ceilings, device = [], {}, "?"
for path in sys.argv[1:]:
    if os.path.exists(path):
        data = json.load(open(path))
        rows += data["results"]
        ceilings.update({k: v for k, v in data["ceilings_tflops"].items() if v and k not in ceilings})
        device = data["device_name"]
if not rows:
    sys.exit("no benchmark results")
order = {"eager": 0, "compile": 1, "triton": 2}
rows.sort(key=lambda r: (r["width"], r["steps"], order.get(r["backend"], 9), r["precision"]))
ms = {(r["backend"], r["precision"], r["width"], r["steps"]): r["ms_per_frame_p50"] for r in rows}
print(f"\n== irflow-unet64, batch 1, {device}")
for (b, p, w, k), t in sorted(ms.items()):
    if b == "triton":
        base = ms.get(("compile", "fp16", w, k))
        vs = f"{base / t:.2f}x vs compile fp16 ({base:.1f} ms)" if base else "compile fp16 missing"
        print(f"triton {p} {w}px K={k}: {t:.1f} ms/frame, {vs}")
print("ceiling (TFLOP/s): " + ", ".join(f"{p} {c:.1f}" for p, c in ceilings.items()))
print(format_table(rows))
PY
