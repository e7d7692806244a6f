# Attune — the README's two commands are `make run` and `make test`.
# Everything runs inside .venv, created here from requirements*.txt.

PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

# Development defaults; an explicit environment wins.
export DEBUG ?= 1
export PYTHONUNBUFFERED := 1

.PHONY: run test lint format install install-dev browser migrate demo clean bench

$(BIN)/python:
	$(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): requirements.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements.txt
	touch $@

$(DEV_STAMP): requirements.txt requirements-dev.txt | $(BIN)/python
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $@ $(STAMP)

install: $(STAMP)
install-dev: $(DEV_STAMP)

migrate: install
	$(BIN)/python manage.py migrate --noinput

demo: migrate
	$(BIN)/python manage.py demo_setup

## run: install, migrate, load the demo workspace, then start web + worker (+ beat) under
## supervisor, which restarts a process that dies. Ctrl+C stops all.
run: demo
	@echo "Attune on http://$${ATTUNE_HOST:-127.0.0.1}:$${ATTUNE_PORT:-8000}  (health: /healthz, API docs: /api/docs/)"
	@mkdir -p var
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/supervisord -n -c supervisord.conf \
	  -l var/supervisord.log -j var/supervisord.pid

## browser: Debian's Chromium for the browser tests (no browser download).
browser:
	@test -x /usr/bin/chromium || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }

## test: install what the tests need, then run the whole suite (in var/test, apart from dev data).
test: export ATTUNE_VAR_DIR ?= $(CURDIR)/var/test
test: install-dev browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

lint: install-dev
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python manage.py check
	@# The deployment checklist with production settings (DEBUG off, throwaway keys).
	DEBUG=0 ALLOWED_HOSTS=attune.example.org \
	  SECRET_KEY="$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" \
	  AUDIT_HMAC_KEYS="lint:$$($(BIN)/python -c 'import base64, secrets; print(base64.b64encode(secrets.token_bytes(32)).decode())')" \
	  FIELD_ENCRYPTION_KEYS="$$($(BIN)/python -c 'import base64, secrets; print(base64.urlsafe_b64encode(secrets.token_bytes(32)).decode())')" \
	  $(BIN)/python manage.py check --deploy --fail-level WARNING
	$(BIN)/python manage.py makemigrations --check --dry-run
	$(BIN)/python manage.py spectacular --validate --fail-on-warn --file /dev/null

format: install-dev
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

bench: install-dev
	$(BIN)/python bench/annotation.py

clean:
	rm -rf var/ staticfiles/
