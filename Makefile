# The two commands: `make run` and `make test`. Each sets up what is missing
# first: `make run` only what serving needs (a .venv with the runtime
# dependencies, node_modules with the sockjs-client bundle), `make test` the
# test tools on top (pytest, Playwright, ruff, mypy; axe-core) and Debian's
# Chromium for the browser tests. Separate stamps: a first `make run` on a
# fresh clone downloads none of the test tools.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
STAMP := $(VENV)/.installed-test
NODE_RUN_STAMP := node_modules/.installed-run
NODE_STAMP := node_modules/.installed-test
ARTIFACTS ?= artifacts
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: run test lint test-js test-server test-browser setup chromium nginx cluster clean

# Python keeps the bytecode it compiles (in __pycache__, ignored by git).
# These machines set PYTHONDONTWRITEBYTECODE=1: every Python process of a
# test run (each pytest worker, each server a test starts) compiled every
# module it imported again, and pytest rewrote every test module again.
# Collecting the tests took 6.2 s of CPU a worker, 2.0 s with it kept; a
# server's imports 0.7 s, 0.3 s (load 19); test_cli, test_postgres and
# test_protocol_errors 28.5 s of CPU, 15.3 s.
unexport PYTHONDONTWRITEBYTECODE

# `make run ARGS="--host 127.0.0.1"` passes settings on.
run: $(RUN_STAMP) $(NODE_RUN_STAMP)
	$(BIN)/python -m chatzilla $(ARGS)

# lint, test-js, test-server and test-browser run at once, each one's output
# printed whole when it ends. The browser tests are the long pole: they start
# first, and the rest run niced (NICE), on the CPU the browser tests leave
# (their Chromiums wait on the page and the server, the server tests on
# sockets and timers), so that the browser tests never wait for a core
# behind them. TEST_JOBS=1 runs them one after another.
TEST_JOBS ?= 4
test: setup chromium nginx
	$(MAKE) --no-print-directory --jobs=$(TEST_JOBS) --output-sync=target \
	  test-browser lint test-js test-server NICE="nice -n 10"

# Lint and format check (ruff) over all our Python, and types (mypy, on
# chatzilla/); both configured in pyproject.toml.
LINTED := chatzilla tests bench deploy
lint: setup
	$(NICE) $(BIN)/ruff check $(LINTED)
	$(NICE) $(BIN)/ruff format --check $(LINTED)
	$(NICE) $(BIN)/mypy

# The page's modules that touch no DOM (connection, conversation, outbox,
# errors, rules...), with Node's own test runner: no browser, no framework.
test-js:
	$(NICE) node --test tests/js/

# Server and browser tests run in TEST_WORKERS processes (pytest-xdist):
# auto is two a core (tests/conftest.py), 0 runs them in this process.
TEST_WORKERS ?= auto

# Server, domain and protocol tests over real loopback sockets, a test at a
# time to whichever worker is free (the slow modules handed out first).
test-server: setup
	$(NICE) $(BIN)/python -m pytest tests --ignore=tests/browser -n $(TEST_WORKERS) --dist load --maxschedchunk 4

# Playwright's sync API leaves a loop running that pytest-tornado tests
# cannot share, so the browser tests get their own pytest process (its
# workers: auto is one a core, each with its own Chromium).
test-browser: setup chromium
	CHATZILLA_ARTIFACTS=$(abspath $(ARTIFACTS)) $(BIN)/python -m pytest tests/browser \
	  -n $(TEST_WORKERS) --dist load --maxschedchunk 2

setup: $(STAMP) $(NODE_STAMP)

# The host's pip installs into the venv (--python, pip 22.3 or later): a venv
# made without a pip of its own is ready in a second, where ensurepip takes 5
# to 30 s of a first `make run`. A host without such a pip gives the venv its own.
HOST_PIP := $(shell $(PYTHON) -m pip --python "$$(command -v $(PYTHON))" --version >/dev/null 2>&1 && echo yes)
PIP = $(if $(HOST_PIP),$(PYTHON) -m pip --python $(BIN)/python,$(BIN)/python -m pip) \
	install --quiet --disable-pip-version-check

$(BIN)/python:
	$(PYTHON) -m venv $(if $(HOST_PIP),--without-pip) $(VENV)

# Serving needs the runtime dependencies (setup.cfg's install_requires), not
# the package: `python -m chatzilla` runs it from this checkout. Building the
# editable package (an isolated build environment with setuptools) took 24 s
# of a 55 s first `make run` at load 25; `make test` installs it. Nor are the
# dependencies byte-compiled up front (17 s -> 9 s at load 23): Python
# compiles the modules the server imports as it first imports them.
RUNTIME_DEPS = $(shell $(PYTHON) -c 'import configparser, shlex; c = configparser.ConfigParser(); \
	c.read("setup.cfg"); print(shlex.join(r.strip() for r in c["options"]["install_requires"].splitlines() if r.strip()))')

$(RUN_STAMP): setup.cfg pyproject.toml | $(BIN)/python
	$(PIP) --no-compile $(RUNTIME_DEPS)
	touch $@

$(STAMP): $(RUN_STAMP)
	$(PIP) -e '.[test]'
	touch $@

# sockjs-client alone for serving; the devDependencies (axe-core) for tests.
# npm ci empties node_modules first, stamps included: the full install
# stamps both, so that `make run` after `make test` does not undo it.
$(NODE_RUN_STAMP): package.json package-lock.json
	npm ci --omit=dev --no-audit --no-fund --prefer-offline
	touch $@

$(NODE_STAMP): $(NODE_RUN_STAMP)
	npm ci --no-audit --no-fund
	touch $(NODE_RUN_STAMP) $@

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  echo "Installing Debian's chromium for the browser tests"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q chromium; }

# The cluster test and `make cluster` put Debian's nginx in front.
nginx:
	@command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || { \
	  echo "Installing Debian's nginx-light for the cluster test"; \
	  $(SUDO) apt-get update -q && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q nginx-light; }

# Two Chatzilla processes sharing rooms through the Redis at $(REDIS_URL),
# behind nginx with SockJS stickiness, on http://127.0.0.1:8080/.
REDIS_URL ?= redis://127.0.0.1:6379/0
cluster: setup nginx
	$(BIN)/python deploy/cluster.py --port 8080 --redis-url $(REDIS_URL)

clean:
	rm -rf $(VENV) node_modules $(ARTIFACTS) .pytest_cache .mypy_cache .ruff_cache
	find . -name __pycache__ -type d -not -path './node_modules/*' -prune -exec rm -rf {} +

# The benchmark (bench/run.py): Chatzilla against the plain sockjs-tornado
# floor and the npm sockjs reference server, side by side; prints the table
# and writes docs/performance.md. `make bench BENCH_ARGS=--quick` for a short
# run. 5000 idle connections need more open files than some shells allow.
# Then bench/ack_rate.py: acknowledgements a second and fan-out for memory,
# SQLite, Postgres, Redis and Postgres+Redis side by side (the Storage section
# of that page), and bench/crowd.py: 10,000 connections against Node and the
# floor (The crowd), and bench/search.py: searches in a room of 100,000
# messages on SQLite and Postgres (Search).
.PHONY: bench
bench: setup
	@[ -d bench/node/node_modules ] || npm ci --prefix bench/node --no-audit --no-fund
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 16384 2>/dev/null || true; \
	$(BIN)/python bench/run.py $(BENCH_ARGS)
	$(BIN)/python bench/ack_rate.py --rounds 3 --write docs/performance.md
	ulimit -n "$$(ulimit -Hn)" 2>/dev/null || ulimit -n 32768 2>/dev/null || true; \
	$(BIN)/python bench/crowd.py --write docs/performance.md
	$(BIN)/python bench/search.py --write docs/performance.md
