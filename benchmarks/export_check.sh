#!/usr/bin/env bash
# One-shot check of the export on another machine (e.g. a GPU test machine: torch 2.11, onnx,
# onnxruntime CPU, no TensorRT), without building the C++ extension:
#   1. versions; 2. the export tests + golden/model tests (TensorRT tests skip without tensorrt);
#   3. CPU latency: eager PyTorch vs ONNX Runtime fp32 vs INT8 (benchmarks/bench_onnx_cpu.py).
# Usage: bash benchmarks/export_check.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-export_out}}"
mkdir -p "$out"
py="${PYTHON:-python3}"

# irflow_engine.export and .kernels live in top-level folders: assemble an importable tree.
tree="$(mktemp -d)"
cp -rs "$PWD/irflow_engine" "$tree/irflow_engine"
ln -s "$PWD/export" "$tree/irflow_engine/export"
ln -s "$PWD/kernels" "$tree/irflow_engine/kernels"
export PYTHONPATH="$tree${PYTHONPATH:+:$PYTHONPATH}"

echo "== environment"
nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null || echo "no GPU"
"$py" -c "import sys, torch, onnx, onnxruntime as o; print('python', sys.version.split()[0], 'torch', torch.__version__, 'onnx', onnx.__version__, 'onnxruntime', o.__version__, o.get_available_providers())"
"$py" -c "import tensorrt; print('tensorrt', tensorrt.__version__)" 2>/dev/null || echo "tensorrt: not installed"
lscpu | grep -E "Model name|^CPU\(s\)" || true

echo "== tests"
t0=$(date +%s)
"$py" -m pytest -q -p no:cacheprovider tests/test_export_onnx.py tests/test_export_int8.py \
  tests/test_export_tensorrt.py tests/test_golden.py tests/test_model.py 2>&1 | tail -12
echo "tests in $(( $(date +%s) - t0 ))s"

echo "== CPU latency, eager vs ONNX Runtime"
timeout "${BENCH_TIMEOUT:-300}" "$py" benchmarks/bench_onnx_cpu.py --size 512 --steps 3 --iters 5 \
  --json "$out/bench_onnx_cpu.json" 2> "$out/bench_onnx_cpu.err" | tee "$out/bench_onnx_cpu.log" \
  || { tail -20 "$out/bench_onnx_cpu.err"; echo "BENCH FAILED (or timed out)"; }
