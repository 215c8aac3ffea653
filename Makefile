# Quick start: `make demo` (set up, then denoise a held-out photograph) and `make test`.
# Set-up makes a virtual environment in .venv, installs PyTorch there if it has none
# (TORCH_SPEC; GPU users install their CUDA build of torch into .venv first, or pass
# VENV_FLAGS=--system-site-packages to reuse the system's), then the package with its tests.

PYTHON ?= python3
VENV ?= .venv
VENV_FLAGS ?=
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
STAMP := $(VENV)/.irflow-installed
SOURCES := pyproject.toml setup.py CMakeLists.txt $(wildcard csrc/*.cpp csrc/*.h csrc/cuda/*)

.PHONY: install test demo bench clean train-defaults finetune-denoise finetune-derain

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test]"
	touch $@

test: install
	$(PY) -m pytest

demo: install
	$(VENV)/bin/irflow demo -o demo_out

# Retrain the bundled models (irflow_engine/weights/) from scikit-image's photographs: the two
# runs share the CPU, one thread each; with a CUDA GPU the denoiser trains there instead, with the
# recipe of the bundled one (configs/denoise-s-gpu.json, ~5 minutes). Override with
# DENOISE_CONFIG=... . Progress and logs in runs/; see docs/MODELS.md.
DENOISE_CONFIG ?= $(shell $(PY) -c "import torch; print('configs/denoise-s-gpu.json' if torch.cuda.is_available() else 'configs/denoise-s.json')" 2>/dev/null || echo configs/denoise-s.json)
train-defaults: install
	OMP_NUM_THREADS=1 $(VENV)/bin/irflow train --config $(DENOISE_CONFIG) --quiet \
	    --bundle-to irflow_engine/weights/irflow-denoise-s.safetensors & p1=$$!; \
	OMP_NUM_THREADS=1 $(VENV)/bin/irflow train --config configs/derain-s.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-derain-s.safetensors & p2=$$!; \
	wait $$p1; a=$$?; wait $$p2; b=$$?; test $$a -eq 0 && test $$b -eq 0

# Fine-tune the bundled denoiser on the CPU in two stages (docs/MODELS.md): configs/denoise-s-cpu-ft.json
# (5,655 steps, about 110 minutes on 2 cores), then configs/denoise-s-cpu-ft2.json (5,105 steps, about
# 135 minutes; its consistency term runs the engine's own 2-4 step schedules). Run after
# `make train-defaults` on a GPU, this makes the bundled irflow-denoise-s. Each stage starts from
# whatever irflow-denoise-s is bundled then.
finetune-denoise: install
	$(VENV)/bin/irflow train --config configs/denoise-s-cpu-ft.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-denoise-s.safetensors
	$(VENV)/bin/irflow train --config configs/denoise-s-cpu-ft2.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-denoise-s.safetensors

# Fine-tune the bundled deraining model on the CPU (docs/MODELS.md), four times:
# configs/derain-s-cpu-ft.json (a 4,500 s budget, 3,578 steps at about 1.25 s/step on 2 cores), then
# configs/derain-s-cpu-ft2.json (4,800 s, ~3,800 steps), configs/derain-s-cpu-ft3.json (2,400 s) and
# configs/derain-s-cpu-ft4.json (3,600 s);
# their consistency term runs the engine's own 1-4 step schedules. Run after `make train-defaults`,
# this makes the bundled irflow-derain-s.
finetune-derain: install
	$(VENV)/bin/irflow train --config configs/derain-s-cpu-ft.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-derain-s.safetensors
	$(VENV)/bin/irflow train --config configs/derain-s-cpu-ft2.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-derain-s.safetensors
	$(VENV)/bin/irflow train --config configs/derain-s-cpu-ft3.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-derain-s.safetensors
	$(VENV)/bin/irflow train --config configs/derain-s-cpu-ft4.json --quiet \
	    --bundle-to irflow_engine/weights/irflow-derain-s.safetensors

bench: install
	$(VENV)/bin/irflow-bench-latency

clean:
	rm -rf build demo_out *.egg-info irflow_engine/_C*.so
