# The README's two commands, `make demo` and `make test`, work on a fresh machine: they create
# .venv and install the exact pins of requirements.lock (with uv, which installs the ~1 GB SDK
# tree in well under a minute, where pip takes 3-4). Bytecode is compiled at install time: with
# PYTHONDONTWRITEBYTECODE set (as on CI machines) every run would otherwise recompile the SDK,
# about 4 s per command.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed

.PHONY: install demo test lock clean

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; this project needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/mlops demo

test: install
	$(BIN)/python -m pytest

# Re-resolve the lock after changing a pin in pyproject.toml.
lock: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --output-file requirements.lock pyproject.toml

clean:
	rm -rf $(VENV) .pytest_cache .coverage coverage.xml .mlops
