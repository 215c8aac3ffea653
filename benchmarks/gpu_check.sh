#!/usr/bin/env bash
# One-shot GPU check (run on a machine with a CUDA GPU, from the repository root):
#   1. build and install the package into the current Python (no network needed),
#   2. run the test suite there (CUDA tests included),
#   3. time irflow-unet64 at 1280x720, K = 3: eager fp32 / eager fp16 / compile fp16,
#      all in one process on one card, and print the table last.
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

echo "== benchmark"
"$py" -m irflow_engine.bench --model irflow-unet64 --device cuda --resolution 1280x720 --steps 3 \
  --runs eager:fp32,eager:fp16,compile:fp16 --iters 10 --json "$out/bench.json" 2> "$out/bench.err" \
  || { tail -20 "$out/bench.err"; echo "BENCH FAILED"; exit 1; }
