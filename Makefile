# The loyalty connector. `make run` to try it, `make test` to check it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: install browser run test lint bench profile fuzz faults clean

# The browser tests drive Debian's chromium (apt-get as root, else through sudo).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@rm -f $(VENV)/.installed-*; touch $@

install: $(STAMP)

run: $(STAMP)
	$(BIN)/connector run

lint: $(STAMP)
	$(BIN)/ruff check connector tests bench fuzz faults
	$(BIN)/ruff format --check connector tests bench fuzz faults wsgi.py
	$(BIN)/mypy

browser:  # Debian's chromium for the browser tests of the merchant pages, installed when missing
	@command -v chromium >/dev/null 2>&1 || { echo "installing Debian's chromium for the browser tests..."; \
	  $(SUDO) apt-get install -y -q chromium >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -q >/dev/null && $(SUDO) apt-get install -y -q chromium >/dev/null; }; }

test: $(STAMP) lint browser
	$(BIN)/pytest -q

bench: $(STAMP)  # every figure with its anchor, ratio, target and PASS/MISS (options: make bench BENCH_ARGS="--only delivery")
	$(BIN)/python -m bench $(BENCH_ARGS)

# Where one worker's time goes per webhook (py-spy; options: make profile PROFILE_ARGS="--webhooks 500").
profile: $(STAMP)
	$(BIN)/python -m bench.profile $(PROFILE_ARGS)

fuzz: $(STAMP)  # malformed input over every source against gunicorn + workers (python -m fuzz --help)
	$(BIN)/python -m fuzz

# The fault suite: 10,000 webhooks x 3 through the real stack under faults (minutes; not in CI).
# Options through FAULTS_ARGS, e.g. make faults FAULTS_ARGS="--webhooks 500".
faults: $(STAMP)
	$(BIN)/python -m faults $(FAULTS_ARGS)

clean:
	rm -rf $(VENV) var .pytest_cache .mypy_cache .ruff_cache
