# Two commands for a new user:  `make lab` (set up and open the course) and `make test`.
# Both build their own virtual environment in .venv on first use.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: lab test editions test-ipywidgets7 site test-browser clean-venv

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install "torch==2.14.1" "torchvision==0.29.1"
	$(PY) -m pip install -e ".[dev]"
	# The standard kernelspec (python3, "Python 3"), the one the committed notebooks name and Colab and
	# VS Code use: any other display name makes JupyterLab mark each notebook modified when it opens.
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3"
	touch $(STAMP)

lab: $(STAMP)
	$(VENV)/bin/jupyter lab notebooks/00_start_here.ipynb $(if $(filter 0,$(shell id -u)),--allow-root,)

# Unit tests, then both editions of every chapter executed by nbval in fast mode (DIFFUSION_LAB_FAST=1).
# JOBS pytest workers (pytest-xdist), one torch thread each: a file's tests (a notebook's cells) stay in
# one worker. JOBS=1 runs them in this process, with torch's own thread count.
JOBS ?= 2
test: $(STAMP)
	$(PY) -m ruff check diffusion_lab tests scripts notebooks solutions
	DIFFUSION_LAB_FAST=1 DIFFUSION_LAB_PROGRESS=off $(if $(filter 1,$(JOBS)),,OMP_NUM_THREADS=1 MKL_NUM_THREADS=1) $(PY) -m pytest tests notebooks \
		solutions --ignore=tests/browser --nbval-lax --nbval-current-env -p no:cacheprovider \
		$(if $(filter 1,$(JOBS)),,-n $(JOBS) --dist loadfile) --durations=15

# Both editions of every chapter from its one source, chapters/NN_name.py (scripts/editions.py):
# the student edition in notebooks/, the instructor edition in solutions/. EXECUTE=1 also runs them
# (minutes per chapter) to refresh their outputs; CHAPTERS="03 05" limits it to some chapters.
editions: $(STAMP)
	$(PY) scripts/editions.py $(CHAPTERS) $(if $(EXECUTE),--execute,)

# The viewer tests again under ipywidgets 7.7.1, the version Colab ships: a venv that sees .venv's
# packages (site.addsitedir in a .pth file) but holds its own ipywidgets.
IPYW7 := .venv-ipywidgets7
test-ipywidgets7: $(STAMP)
	rm -rf $(IPYW7)
	$(PYTHON) -m venv $(IPYW7)
	echo "import site; site.addsitedir('$$($(PY) -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")')" \
		> "$$($(IPYW7)/bin/python -c "import sysconfig; print(sysconfig.get_paths()['purelib'])")/_diffusion_lab.pth"
	$(IPYW7)/bin/python -m pip install -q "ipywidgets==7.7.1"
	DIFFUSION_LAB_FAST=1 $(IPYW7)/bin/python -m pytest tests/test_widgets.py -p no:cacheprovider

# Extras of the website and the browser test, installed on first use.
WEB_STAMP := $(VENV)/.installed-web
$(WEB_STAMP): $(STAMP)
	$(PY) -m pip install -e ".[dev,browser,site]"
	touch $(WEB_STAMP)

# The course website from the committed notebooks (Jupyter Book 1, offline), checked: build/site/_build/html.
site: $(WEB_STAMP)
	$(PY) scripts/build_site.py

# JupyterLab 4 and Notebook 7 in headless Chromium (the system's: apt-get install chromium), then the
# website. Set DIFFUSION_LAB_KERNEL_PYTHON to run the notebooks on another Python (e.g. $(IPYW7)/bin/python).
test-browser: $(WEB_STAMP) site
	DIFFUSION_LAB_BROWSER=1 $(PY) -m pytest tests/browser -p no:cacheprovider -rA

clean-venv:
	rm -rf $(VENV)
