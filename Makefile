# Inkwell's two commands: `make serve` (the API on a SQLite file, migrated, with demo data,
# GraphiQL at http://127.0.0.1:8000/graphql) and `make test` (the suite on SQLite, and on
# PostgreSQL too when TEST_DATABASE_URL is set). Both create .venv from nothing on first use.

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
AUDIT := tests/http_audit
AUDIT_STAMP := $(AUDIT)/node_modules/.installed-stamp

.PHONY: serve test lint bench export-schema clean

serve: $(STAMP)
	$(PY) server.py serve

test: $(STAMP) $(AUDIT_STAMP)
	$(PY) -m pytest $(PYTEST_ARGS)

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

# The GraphQL-over-HTTP audit suite (npm's graphql-http) for tests/test_http_audit.py; without
# npm the test is skipped (and fails where INKWELL_REQUIRE_POSTGRES=1, as in CI).
$(AUDIT_STAMP): $(AUDIT)/package.json $(AUDIT)/package-lock.json
	@if command -v npm >/dev/null; then \
		npm ci --prefix $(AUDIT) --silent --no-audit --no-fund && touch $(AUDIT_STAMP); \
	else echo "npm not found: the GraphQL-over-HTTP audit will be skipped"; fi

clean:
	rm -rf $(VENV) inkwell.db inkwell.db-wal inkwell.db-shm
