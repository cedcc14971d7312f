# Two commands on a fresh machine:  `make run` (the product) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test test-quick check install install-dev browser axe worker clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt

install-dev: $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt

# Debian's chromium drives the browser tests (no browser downloads here).
browser:
	@command -v chromium >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
		else echo "chromium missing: run 'sudo apt-get install chromium' (browser tests will be skipped)"; fi; }

# axe-core (npm) checks the pages' accessibility in the browser tests; kept in the git-ignored .axe/.
AXE_VERSION := 4.14.1
axe:
	@test -f .axe/node_modules/axe-core/axe.min.js || { \
		if command -v npm >/dev/null 2>&1; then npm install --silent --no-audit --no-fund --prefix .axe axe-core@$(AXE_VERSION) \
			|| echo "npm could not install axe-core: the accessibility checks of the browser tests will be skipped"; \
		else echo "npm missing: the accessibility checks of the browser tests will be skipped"; fi; }

run: install
	$(BIN)/python manage.py migrate --no-input -v0
	$(BIN)/python manage.py collectstatic --no-input -v0
	$(BIN)/python manage.py demo_setup
	@echo
	@echo "  Open http://$(HOST):$(PORT)/  (learner: learner / demo, staff: admin / demo)"
	@echo "  Dashboard http://$(HOST):$(PORT)/dashboard/   API docs http://$(HOST):$(PORT)/api/docs/"
	@echo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# The suite on one process per core (pytest-xdist, at most 4; each process has its own test database:
# test-db.sqlite3_gw0, test_<name>_gw0, ...). Each process starts on its own contiguous share of the tests,
# modules with slow tests first, and one that runs out takes tests from the end of another's share
# (worksteal; loadscope would keep modules whole, but runs only one of the tests that share a node id, as
# schemathesis's do). Then, in one process, the tests that use the Celery worker .ci/run starts, which
# reads test_<name> itself.
# PYTEST_ARGS go to both passes, e.g. PYTEST_ARGS='-x tests/tutor'.
TEST_PROCESSES ?= auto
test: install-dev browser axe
	$(BIN)/python -m pytest -n $(TEST_PROCESSES) --maxprocesses 4 --dist worksteal $(PYTEST_ARGS)
	$(BIN)/python -m pytest --live-worker $(PYTEST_ARGS)

# The same without the tests marked slow (more than about 5 s each): a quick check while working.
test-quick:
	$(MAKE) test PYTEST_ARGS='-m "not slow" $(PYTEST_ARGS)'

# Lint, format and types (settings in pyproject.toml): what CI runs before the tests. All three run,
# so one pass shows every finding; `ruff check --fix .` and `ruff format .` repair most of the first two.
check: install-dev
	@status=0; \
	$(BIN)/ruff check --output-format concise . || status=1; \
	$(BIN)/ruff format --check --output-format concise . || status=1; \
	$(BIN)/mypy || status=1; \
	exit $$status

worker: install
	$(BIN)/celery -A tutor worker --loglevel=info --concurrency=1

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles artifacts test-artifacts .axe .mypy_cache .ruff_cache
