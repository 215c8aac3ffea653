#!/usr/bin/env bash
# One-shot GPU check of the video pipeline (from the repository root, on a CUDA machine):
#   1. build irflow_engine._C in place (CUDA path for sm_90 unless CUDAARCHS says otherwise),
#   2. the video/tiling tests, CUDA ones included (CUDA pipeline == CPU pipeline to ±1 code,
#      stream() on CUDA),
#   3. a real CUDA out-of-memory retry in tiles (benchmarks/gpu_check_video.py),
#   4. end-to-end fps vs the engine alone at 1280x720 (benchmarks/bench_video.py): the bundled
#      irflow-denoise-s and the paper-size irflow-unet64 (random weights), eager fp16, K = 1.
# Needs PyAV importable (pip install av). Usage: bash benchmarks/gpu_check_video.sh [OUT_DIR]
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_out}}"
mkdir -p "$out"
py="${PYTHON:-python3}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1

echo "== environment"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
"$py" -c "import torch, av, sys; print('python', sys.version.split()[0], 'torch', torch.__version__, 'av', av.__version__)"

echo "== build"
t0=$(date +%s)
CUDAARCHS="${CUDAARCHS:-90}" "$py" setup.py build_ext --inplace > "$out/build.log" 2>&1 \
  || { tail -30 "$out/build.log"; echo "BUILD FAILED"; exit 1; }
echo "built in $(( $(date +%s) - t0 ))s; $("$py" -c 'from irflow_engine import pixfmt; print(pixfmt.describe_paths())')"

echo "== tests"
timeout "${TEST_TIMEOUT:-240}" "$py" -m pytest -q -p no:cacheprovider tests/test_video_restore.py \
  tests/test_video_stream.py tests/test_tiling.py tests/test_video_rawpipe.py 2>&1 | tail -15

echo "== out-of-memory retry"
timeout 120 "$py" benchmarks/gpu_check_video.py 2>&1 | tail -5

echo "== end to end vs engine, 1280x720"
timeout 150 "$py" benchmarks/bench_video.py --device cuda --precision fp16 --frames 96 --batch 8 --repeats 5 \
  --json "$out/video_denoise_s.json" 2>&1 | tail -12
timeout 150 "$py" benchmarks/bench_video.py --device cuda --precision fp16 --frames 48 --batch 4 --repeats 5 \
  --model irflow-unet64 --json "$out/video_unet64.json" 2>&1 | grep -v "RANDOM" | tail -12
