# Two commands for a new user:  `make lab` (set up and open the course) and `make test`.
# Both build their own virtual environment in .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test editions clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (diffusion-lab)"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit tests, then both editions of every chapter executed by nbval in fast mode (DIFFUSION_LAB_FAST=1).
test: $(STAMP)
	$(PY) -m ruff check diffusion_lab tests scripts notebooks solutions
	DIFFUSION_LAB_FAST=1 $(PY) -m pytest tests notebooks solutions --nbval-lax --nbval-current-env -p no:cacheprovider

# Both editions of every chapter from its one source, notebooks/NN_name.py (scripts/editions.py):
# the student edition in notebooks/, the instructor edition in solutions/. EXECUTE=1 also runs them
# (minutes per chapter) to refresh their outputs; CHAPTERS="03 05" limits it to some chapters.
editions: $(STAMP)
	$(PY) scripts/editions.py $(CHAPTERS) $(if $(EXECUTE),--execute,)

clean-venv:
	rm -rf $(VENV)
