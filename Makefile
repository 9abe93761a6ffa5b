# discrete-latents: `make lab` to study, `make run` to execute everything headless, `make test` to test.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup lab run run-fast test check release autograder notebooks clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --no-compile -e ".[dev]"
	$(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null || true  # pip's byte-compiling, on every core; like pip, it skips a file that will not compile
	touch $(STAMP)

setup: $(STAMP)                   ## create .venv and install the course with everything it needs

lab: setup                        ## open the course in JupyterLab
	$(VENV)/bin/jupyter lab notebooks/

run: setup                        ## execute every solution notebook (full mode) and print a table of results
	$(PY) -m starter.run

run-fast: setup                   ## the same in fast mode (COURSE_FAST=1), a few minutes
	$(PY) -m starter.run --fast

test: setup                       ## ruff, unit tests + nbval re-execution of the solutions in fast mode
	$(VENV)/bin/ruff check --quiet . && $(VENV)/bin/ruff format --check --quiet .
	COURSE_FAST=1 $(PY) -m pytest -n auto --dist loadfile --no-loadscope-reorder --nbval-lax --nbval-current-env tests solutions

check: setup                      ## your score and feedback before you submit: make check NB=02 (no hidden tests)
	$(PY) -m starter.grade --self $(wildcard notebooks/$(NB)_*.ipynb)

release: setup                    ## a notebook for graded use, its answers withheld: make release NB=03 OUT=dist
	$(PY) -m starter.release $(NB) --out $(or $(OUT),dist)

autograder: setup                 ## a Gradescope or PrairieLearn autograder: make autograder NB=03 FORMAT=gradescope OUT=dist
	$(PY) -m starter.autograder.build $(NB) --format $(FORMAT) --out $(or $(OUT),dist)

notebooks: setup                  ## regenerate notebooks/ from solutions/
	$(PY) -m starter.build

clean:
	rm -rf $(VENV) runs build *.egg-info
