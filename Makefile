# The README's two commands, `make demo` and `make test`, work on a fresh machine: they create
# .venv and install the exact pins of requirements.lock (with uv, which installs the ~1 GB SDK
# tree in well under a minute, where pip takes 3-4). Bytecode is compiled at install time, also for our
# own editable sources: with PYTHONDONTWRITEBYTECODE set (as on CI machines) every run would otherwise
# recompile the SDK, about 4 s per command, and our packages, about 0.6 s per `mlops` process.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
STAMP := $(VENV)/.installed
# The twin's IAM engine: a Node sidecar installed from its pinned lockfile (see docs/twin-iam.md).
SIDECAR := scripts/mlops/local/iam/sidecar
SIDECAR_STAMP := $(SIDECAR)/node_modules/.installed

# Coverage floor: what the suite honestly reaches today; raise it as the code grows.
COVERAGE_FLOOR := 85
PACKAGES := mlops mlops_bridge model_build model_deploy

.PHONY: install browser demo test check lint fmt lock clean infra-lint lock-checkov

$(STAMP): pyproject.toml requirements.lock
	@command -v $(PYTHON) >/dev/null || { echo "error: $(PYTHON) not found; this project needs Python 3.11 (set PYTHON=/path/to/python3.11)" >&2; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip install --quiet --compile-bytecode --python $(BIN)/python -r requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

$(SIDECAR_STAMP): $(SIDECAR)/package.json $(SIDECAR)/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { echo "error: node and npm not found; the twin's IAM engine needs Node.js >= 18 with npm (e.g. apt-get install nodejs npm), then run make install again" >&2; exit 1; }
	cd $(SIDECAR) && npm ci --no-audit --no-fund --loglevel=error
	touch $(SIDECAR_STAMP)

# Headless Chromium and its WebDriver for the MLflow UI test (tests/e2e): Debian's packages, installed with apt
# when missing and this is root on a Debian/Ubuntu machine; anywhere else, a clear error saying what to install.
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
		echo "installing chromium and chromium-driver (Debian packages) for the MLflow UI test"; \
		(apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null 2>&1 || \
		 (apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null)) || \
		{ echo "error: apt-get could not install chromium and chromium-driver; install them, then run make install again" >&2; exit 1; }; \
	else \
		echo "error: chromium and chromedriver not found; the MLflow UI test needs them (Debian/Ubuntu: sudo apt-get install chromium chromium-driver), then run make install again" >&2; exit 1; \
	fi

install: $(STAMP) $(SIDECAR_STAMP) browser
	@# Our own sources are an editable install: compile them too (only what changed since), or every `mlops` process
	@# of a pipeline step or test recompiles them (about 0.6 s each). Serially: about 0.1 s when nothing changed and
	@# 0.4 s from scratch, where a process pool (-j 0) costs 0.5 s either way, in each pipeline job's `make install`.
	$(BIN)/python -m compileall -q scripts model_build model_deploy infra/bridge/mlops_bridge >/dev/null

# `make demo USE_CASE=wine` runs another use case (a folder of model_build/use_cases); default: mlops.yaml's.
demo: install
	$(BIN)/mlops $(if $(USE_CASE),--use-case $(USE_CASE)) demo

# Fast gates first (seconds), then the suite with coverage (Cobertura XML and JUnit for Azure DevOps),
# on every core: pytest-xdist workers are separate processes (own moto state, temp dirs, ports, render
# cache); --dist loadfile keeps a module's tests, and its shared twin, on one worker, and --no-loadscope-reorder
# hands the modules out in collection order (tests/conftest.py puts the longest first) instead of by test count.
TEST_WORKERS ?= auto
test: check
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(addprefix --cov=,$(PACKAGES)) --cov-report=term:skip-covered \
		--cov-report=xml:coverage.xml --cov-fail-under=$(COVERAGE_FLOOR) --junitxml=test-results.xml

check: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

lint: check

fmt: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

# Re-resolve the lock after changing a pin in pyproject.toml.
lock: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 --extra dev --output-file requirements.lock pyproject.toml

# checkov pins packaging<24, which conflicts with pytest: it lives in its own tool environment.
CHECKOV := .tools/checkov/bin/checkov
$(CHECKOV): infra/requirements-checkov.lock | install
	rm -rf .tools/checkov
	$(BIN)/uv venv --quiet --python $(BIN)/python .tools/checkov
	$(BIN)/uv pip install --quiet --python .tools/checkov/bin/python -r infra/requirements-checkov.lock

# cfn-lint and checkov on infra/templates (cfn-lint also runs inside `make test`).
infra-lint: install $(CHECKOV)
	$(BIN)/mlops infra lint

lock-checkov: install
	$(BIN)/uv pip compile --quiet --python-version 3.11 --generate-hashes infra/checkov.in -o infra/requirements-checkov.lock

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .coverage coverage.xml test-results.xml .tools .mlops
