# Inkwell's two commands: `make serve` (the API on a SQLite file, migrated, with demo data,
# GraphiQL at http://127.0.0.1:8000/graphql) and `make test` (the suite on SQLite, and on
# PostgreSQL too when TEST_DATABASE_URL is set). Both create .venv from nothing on first use.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
AUDIT := tests/http_audit
# npm projects the suite drives: the HTTP audit, the client libraries, the browser tests.
NPM_SUITES := $(AUDIT) tests/clients tests/browser
NPM_STAMPS := $(foreach d,$(NPM_SUITES),$(if $(wildcard $(d)/package.json),$(d)/node_modules/.installed-stamp))

.PHONY: serve test test-deps lint bench export-schema clean

serve: $(STAMP)
	$(PY) server.py serve

# The suite runs in parallel (pytest-xdist; the worker count and the grouping are set in
# pyproject.toml and tests/conftest.py); add PYTEST_ARGS="-n 0" to run it in one process.
test: test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The virtualenv and the npm suites install independently of each other: at the same time
# (a fresh install, as in CI, takes about 23 s instead of 33 s).
test-deps:
	@$(MAKE) --no-print-directory -j4 $(STAMP) $(NPM_STAMPS)

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py $(BENCH_ARGS)

export-schema: $(STAMP)
	$(PY) server.py export-schema

$(STAMP): pyproject.toml scripts/find-python
	@interpreter=$$(scripts/find-python) || exit 1; \
	if [ ! -x $(PY) ] || ! $(PY) -c 'import sys; sys.exit(sys.version_info < (3, 12))'; then \
		rm -rf $(VENV); echo "creating $(VENV) with $$interpreter"; \
		$$interpreter -m venv $(VENV) || exit 1; \
	fi
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test,dev]'
	@touch $(STAMP)

# The npm packages of the suites above (graphql-http's audit, Apollo Client, urql, Relay,
# graphql-ws, graphql-sse, GraphQL Code Generator, playwright-core), each from its lock file;
# without npm those tests are skipped (and fail where INKWELL_REQUIRE_POSTGRES=1, as in CI).
%/node_modules/.installed-stamp: %/package.json %/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $* --silent --no-audit --no-fund && touch $@; \
	else echo "npm not found: the tests in $* will be skipped"; fi

clean:
	rm -rf $(VENV) inkwell.db inkwell.db-wal inkwell.db-shm
