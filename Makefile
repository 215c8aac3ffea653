# Quick start: `make demo` (set up, then restore the bundled example image) and `make test`.
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

.PHONY: install test demo bench clean

install: $(STAMP)

$(STAMP): $(SOURCES)
	test -x $(PY) || $(PYTHON) -m venv $(VENV_FLAGS) $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH_SPEC)"
	$(PY) -m pip install -e ".[test]"
	touch $@

test: install
	$(PY) -m pytest

demo: install
	@mkdir -p demo_out
	$(VENV)/bin/irflow restore examples/noisy_test_card.png -o demo_out/restored.png \
		--model irflow-unet32-d3 --steps 3 --device auto --overwrite
	@echo "demo: input examples/noisy_test_card.png -> output demo_out/restored.png"

bench: install
	$(VENV)/bin/irflow-bench-latency

clean:
	rm -rf build demo_out *.egg-info irflow_engine/_C*.so
