# Two commands on a fresh machine:  `make run` (the product) and `make test` (the suite).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test check install install-dev browser axe worker clean

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

test: install-dev browser axe
	$(BIN)/python -m pytest $(PYTEST_ARGS)

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
