# Two commands for a new user:  `make lab` (set up and open the course) and `make test`.
# Both build their own virtual environment in .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test lint clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (diffusion-lab)"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit tests, then every notebook executed by nbval in fast mode (DIFFUSION_LAB_FAST=1).
test: $(STAMP)
	$(PY) -m ruff check diffusion_lab tests scripts notebooks
	DIFFUSION_LAB_FAST=1 $(PY) -m pytest tests notebooks --nbval-lax --nbval-current-env -p no:cacheprovider

clean-venv:
	rm -rf $(VENV)
