# Two commands on a fresh machine:  make book  |  make test
# Both create .venv and install requirements.txt (which includes `-e .`) first.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
JB     := $(VENV)/bin/jupyter-book
STAMP  := $(VENV)/.installed
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)
export TF_CPP_MIN_LOG_LEVEL := 2
export PYDEVD_DISABLE_FILE_VALIDATION := 1

.PHONY: help setup book test test-units release lab chapter grade bench-grading clean

help:
	@echo "make book      build the site into _build/html (every lecture executed)"
	@echo "make test      unit tests, book build, notebooks (nbval), grading round trips"
	@echo "make release   regenerate the student assignments in chapters/ from solutions/"
	@echo "make lab       start JupyterLab"
	@echo "make chapter CH=02_backprop   build one chapter alone (for authors)"
	@echo "make grade A=02_backprop [JOBS=4]   grade submitted/ in the sandbox (see teaching.md)"

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	$(PY) -m ipykernel install --sys-prefix --name python3 --display-name "Python 3 (course)" >/dev/null
	touch $@

book: setup
	$(JB) build . -n -W --keep-going

# Fast checks first, then the book, whose build executes every lecture (a cell error or a Sphinx
# warning fails it: this is the lectures' check, so nbval does not run them a second time), then
# the slow tests (the assignment sources under nbval, nbgrader, the grader, the browser). The slow
# tests run one at a time: sandboxed grading tests share the sandbox's user ids and limits.
test: setup
	$(PY) -m pytest -m "not slow" -q
	$(JB) build . -n -W --keep-going
	$(PY) -m pytest -m slow -q --durations=0 --ignore=chapters --ignore=appendix

test-units: setup
	$(PY) -m pytest -m "not slow" -q

release: setup
	$(PY) -m nbjudge release --all

lab: setup
	$(VENV)/bin/jupyter lab

chapter: setup
	@test -n "$(CH)" || (echo "usage: make chapter CH=02_backprop" && false)
	$(PY) tools/build_chapter.py $(CH)

grade: setup
	@test -n "$(A)" || (echo "usage: make grade A=02_backprop [JOBS=4]" && false)
	$(PY) -m nbjudge grade $(A) $(if $(JOBS),--jobs $(JOBS))

bench-grading: setup
	$(PY) benchmarks/grading.py

clean:
	rm -rf _build
