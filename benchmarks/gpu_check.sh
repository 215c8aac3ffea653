#!/usr/bin/env bash
# One-shot GPU check (run on a machine with a CUDA GPU, from the repository root):
#   1. build and install the package into the current Python (no network needed);
#   2. alone on the fresh GPU (BENCH=1): a per-kernel profile of one fused irflow-unet64 loop
#      (conv = cudnn and conv = triton); benchmarks/conv_bench.py (CONV_BENCH=1: the whole captured
#      loop with cuDNN's heuristic and benchmarked algorithms and with the Triton TMA conv); the timing of
#      irflow-unet64 at RES (default 1280x720 and 1920x1080), K = MAIN_STEPS (1,3): MAIN_RUNS
#      (eager fp32 / eager fp16 / triton fp16 / triton bf16) in one process, torch.compile fp16
#      (+ CUDA graph) for K in COMPILE_STEPS, each in its own process under a time limit;
#   3. then side by side (untimed): the test suite (TESTS=1; CUDA tests included, compiled Triton
#      kernels instead of the interpreter); the fused "triton" backend against eager fp32 (fp16
#      <= 5e-3, bf16 <= 2e-2 relative error; golden nf8, the trained irflow-denoise-s on a noisy
#      photograph, random irflow-unet64; conv = cudnn and triton), its CUDA-graph cache and
#      threads; the pixel-format extension's CUDA path against its CPU path; and (TRAIN=1, off by
#      default) the bundled models in TRAIN_TASKS (denoise derain; denoise-ft and derain-ft fine-tune
#      the bundled models) trained on the GPU within TRAIN_BUDGET_S seconds each
#      (configs/*-s-gpu*.json), then scored with `irflow eval`; the weights land in
#      WORK_DIR/irflow-*.safetensors.
#      Training shares the CPU cores with the tests: on 2026-11-27 it ran at ~1 s/step that way,
#      useless; run it with TESTS=0;
#   4. the benchmark table again, last.
# Usage: bash benchmarks/gpu_check.sh [WORK_DIR]   (logs, JSON, trained weights in WORK_DIR, default
# ./gpu_out; when $OUT is set, WORK_DIR less the training run folders is packed into
# $OUT/gpu_out.tar.gz at exit, and the test summary is copied to $OUT/tests_summary.txt).
# Knobs: DEADLINE_S (the benchmark part, default 480), BENCH, CONV_BENCH, CONV_LAYERS, TESTS,
# CHECKS (triton_check + pixel formats, 1/0), TRAIN (1/0), RES, MAIN_STEPS, MAIN_RUNS,
# COMPILE_STEPS, CONV_VARIANTS, CONV_PRECISIONS, TRAIN_TASKS, TRAIN_BUDGET_S (default 120),
# CUDA_EXT=1 (build the extension's CUDA path even when CHECKS=0 TESTS=0).
# Training alone (nothing else on the GPU, no nvcc build):
#   CHECKS=0 TESTS=0 BENCH=0 TRAIN=1 TRAIN_TASKS=denoise-ft TRAIN_BUDGET_S=420 bash benchmarks/gpu_check.sh
set -uo pipefail
export PYTHONUNBUFFERED=1   # logs of a process that a timeout kills keep what it printed
cd "$(dirname "$0")/.."
work="${1:-gpu_out}"
mkdir -p "$work"
py="${PYTHON:-python3}"
deadline="${DEADLINE_S:-480}"
if [[ -n "${OUT:-}" ]]; then
  trap 'tar czf "$OUT/gpu_out.tar.gz" --exclude=./runs -C "$work" . 2>/dev/null;
        grep -E "^(FAILED|ERROR)|passed|failed" "$work/tests.log" > "$OUT/tests_summary.txt" 2>/dev/null' EXIT
fi

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import torch, triton, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
for mod in numpy safetensors PIL tqdm pytest skimage; do
  "$py" -c "import $mod" 2>/dev/null || echo "missing python module: $mod (what needs it will fail)"
done
git rev-parse --short HEAD 2>/dev/null | sed 's/^/commit /'

echo "== build"
# Build the CUDA sources for this GPU only (one architecture compiles twice as fast as the default two).
if [[ -z "${CUDAARCHS:-}" ]]; then
  cap=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
  [[ "$cap" =~ ^[0-9]+$ ]] && export CUDAARCHS="$cap"
fi
# Only the pixel-format checks and the tests use the extension's CUDA path: without them
# (CHECKS=0 TESTS=0, e.g. a training-only call) skip nvcc, which is most of the build time.
if [[ "${CHECKS:-1}" == 0 && "${TESTS:-1}" == 0 && "${CUDA_EXT:-0}" != 1 ]]; then
  export CMAKE_ARGS="${CMAKE_ARGS:-} -DIRFLOW_WITH_CUDA=OFF"
fi
"$py" -m pip install -v --no-build-isolation --no-deps -e . > "$work/build.log" 2>&1 \
  || { tail -30 "$work/build.log"; echo "BUILD FAILED"; exit 1; }
grep -E "irflow: CUDA path|irflow: OpenMP" "$work/build.log" | sed 's/^ *//'
echo "built at ${SECONDS}s"

benchmark() {
res="${RES:-1280x720,1920x1080}"
echo "== benchmark (alone on the GPU)"
# Where the time of one fused loop goes, kernel by kernel (the issue asks for it while the
# target is missed); first, as it is short and the most useful number to have.
timeout "${PROFILE_TIMEOUT:-150}" "$py" benchmarks/triton_check.py --profile-only --json "$work/profile.json" > "$work/profile.log" 2>&1 \
  || { echo "PROFILE FAILED"; tail -5 "$work/profile.log"; }
sed -n '/== where the time goes/,$p' "$work/profile.log" | grep -v "^ *$" | head -50
# The whole captured loop with cuDNN's heuristic vs benchmarked algorithms vs the Triton 3×3 conv
# (TMA on Hopper), and the folded sub-pixel upsample vs the literal one (cudnn+nearest);
# CONV_VARIANTS chooses; CONV_LAYERS=1 adds the per-layer comparison.
if [[ "${CONV_BENCH:-1}" == 1 ]]; then
  layers=(--skip-layers); [[ "${CONV_LAYERS:-0}" == 1 ]] && layers=()
  timeout "${CONV_TIMEOUT:-200}" "$py" benchmarks/conv_bench.py --resolution "${res%%,*}" "${layers[@]}" \
    --variants "${CONV_VARIANTS:-cudnn,cudnn+nearest,cudnn+bench,triton}" --precisions "${CONV_PRECISIONS:-fp16}" \
    --json "$work/conv_bench.json" > "$work/conv_bench.log" 2>&1 \
    || { tail -5 "$work/conv_bench.log"; echo "CONV BENCH FAILED or timed out"; }
  grep -E "^ |^==|per evaluation|^ *[0-9]" "$work/conv_bench.log" | head -40
fi

bench() {  # bench NAME TIMEOUT_S ARGS...: one irflow-bench-latency process, JSON to $work/bench_NAME.json
  local name="$1" limit="$2"; shift 2
  local left=$(( deadline - SECONDS ))
  (( left < limit )) && limit=$left
  if (( limit < 45 )); then echo "bench $name SKIPPED: ${left}s left of DEADLINE_S=$deadline"; return; fi
  local t0=$SECONDS
  timeout "$limit" "$py" -m irflow_engine.bench --model irflow-unet64 --device cuda --resolution "$res" \
    --iters 10 --json "$work/bench_$name.json" "$@" > "$work/bench_$name.log" 2> "$work/bench_$name.err" \
    || { tail -5 "$work/bench_$name.err"; echo "bench $name FAILED or timed out after ${limit}s"; }
  echo "bench $name: $(( SECONDS - t0 ))s"
}
# The fused backend and its eager baselines in one process (same card, same run).
bench main "${BENCH_TIMEOUT:-150}" --steps "${MAIN_STEPS:-1,3}" \
  --runs "${MAIN_RUNS:-eager:fp32,eager:fp16,triton:fp16,triton:bf16}"
# torch.compile + CUDA graph: one compilation per (K, resolution); K = 3 first, as it is the target.
for k in ${COMPILE_STEPS:-3 1}; do
  bench "compile_k$k" "${COMPILE_TIMEOUT:-150}" --steps "$k" --runs compile:fp16
done

# One table from whatever finished, printed last.
"$py" - "$work"/bench_main.json "$work"/bench_compile_k3.json "$work"/bench_compile_k1.json > "$work/table.txt" <<'PY'
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
err = {(r["backend"], r["precision"], r["width"], r["steps"]): (r.get("rel_err"), r.get("rel_err_vs")) for r in rows}
print(f"\n== irflow-unet64, batch 1, {device}")
for (b, p, w, k), t in sorted(ms.items()):
    if b == "triton":
        base = ms.get(("compile", "fp16", w, k))
        vs = f"{base / t:.2f}x vs compile fp16 ({base:.1f} ms)" if base else "compile fp16 missing"
        e, ref = err[(b, p, w, k)]
        print(f"triton {p} {w}px K={k}: {t:.1f} ms/frame, {vs}" + (f"; rel err {e:.1e} vs {ref}" if ref else ""))
print("ceiling (TFLOP/s): " + ", ".join(f"{p} {c:.1f}" for p, c in ceilings.items()))
print(format_table(rows))
PY
}


side_by_side() {
echo "== checks, tests and training side by side (untimed)"
pids=()
if [[ "${TESTS:-1}" == 1 ]]; then
  xdist=(); "$py" -c "import xdist" 2>/dev/null && xdist=(-n 6)
  OMP_NUM_THREADS=2 timeout 260 "$py" -m pytest -q -rfE -p no:cacheprovider "${xdist[@]}" \
    --junitxml="$work/tests.xml" tests > "$work/tests.log" 2>&1 &
  pids+=($!)
fi
if [[ "${CHECKS:-1}" == 1 ]]; then
  timeout 200 "$py" benchmarks/triton_check.py --json "$work/triton_check.json" \
    > "$work/triton_check.log" 2> "$work/triton_check.err" &
  pids+=($!)
  timeout 100 "$py" benchmarks/gpu_check_pixfmt.py > "$work/pixfmt_check.log" 2>&1 &
  pids+=($!)
fi
train_and_eval() {  # NAME CONFIG EVAL_ARGS...: train configs/CONFIG.json on the GPU as irflow-NAME, score it there
  local name="$1" config="$2"; shift 2
  local weights="$work/irflow-$name.safetensors"
  OMP_NUM_THREADS=2 timeout $(( ${TRAIN_BUDGET_S:-120} + 90 )) "$py" -m irflow_engine.cli train --config "configs/$config.json" \
    --out-dir "$work/runs/$name" --bundle-to "$weights" --time-budget-s "${TRAIN_BUDGET_S:-120}" --quiet \
    > "$work/train_$name.log" 2>&1 || { echo "TRAIN $name FAILED"; tail -5 "$work/train_$name.log"; return; }
  timeout 90 "$py" -m irflow_engine.cli eval --model "$weights" --gt skimage:heldout --steps 1,2,3,4 \
    --device cuda --json "$work/eval_$name.json" "$@" > "$work/eval_$name.log" 2>&1 || echo "EVAL $name FAILED"
}
if [[ "${TRAIN:-0}" == 1 ]]; then
  for task in ${TRAIN_TASKS:-denoise derain}; do
    case "$task" in
      # from scratch (the bundled model's recipe), or fine-tuning the bundled model further
      denoise) train_and_eval denoise-s denoise-s-gpu --degradation noise --level 25 --baseline nlm & ;;
      denoise-ft) train_and_eval denoise-s-ft denoise-s-gpu-ft --degradation noise --level 25 --baseline nlm & ;;
      derain) train_and_eval derain-s derain-s-gpu --degradation rain --level 0.6 & ;;
      derain-ft) train_and_eval derain-s-ft derain-s-gpu-ft --degradation rain --level 0.6 & ;;
      *) echo "unknown TRAIN_TASKS entry $task (denoise, denoise-ft, derain, derain-ft)"; continue ;;
    esac
    pids+=($!)
  done
fi
for p in "${pids[@]}"; do wait "$p"; done
echo "side-by-side phase done at ${SECONDS}s"
echo "-- tests"; grep -E "^(FAILED|ERROR)" "$work/tests.log" 2>/dev/null | head -20; tail -2 "$work/tests.log" 2>/dev/null
if [[ "${CHECKS:-1}" == 1 ]]; then
  echo "-- triton backend"; grep -E "^(PASS|FAIL)|checks passed" "$work/triton_check.log"
  grep -E "Error|error" "$work/triton_check.err" | grep -v -i warn | tail -4
  echo "-- pixel formats"; tail -14 "$work/pixfmt_check.log"
fi
for name in denoise-s denoise-s-ft derain-s derain-s-ft; do
  [[ -f "$work/train_$name.log" ]] || continue
  echo "-- train $name"; grep -E "ms/step|done at step" "$work/train_$name.log"
  tail -12 "$work/eval_$name.log" 2>/dev/null
done
}

# The timed part first, alone on a fresh GPU; then the untimed checks, tests and training side by
# side; the benchmark table is printed again last.
[[ "${BENCH:-1}" == 1 ]] && benchmark
side_by_side
[[ -f "$work/table.txt" ]] && cat "$work/table.txt"
echo "total ${SECONDS}s"
