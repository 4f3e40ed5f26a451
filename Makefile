# Fairshare: `make demo` to try it, `make test` to run the whole suite.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
PY := $(VENV)/bin/python
PYTEST_ARGS ?=
# DEBUG is off unless set (config/settings.py); the demo and the tests run with the
# development defaults. Production sets DEBUG=0 with real secrets instead.
export DEBUG ?= 1

.PHONY: demo test venv migrate screenshots

venv: $(VENV)/.installed

$(VENV)/.installed: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements.txt
	touch $@

migrate: venv
	$(PY) manage.py migrate --noinput

demo: migrate
	$(PY) manage.py seed_demo
	@echo "Fairshare is starting on http://127.0.0.1:8000/ (sign in with a login above; Ctrl-C stops it)"
	$(PY) manage.py runserver 127.0.0.1:8000

test: venv
	$(PY) -m pytest $(PYTEST_ARGS)

# The README's pictures: a fresh demo in a scratch SQLite database (no broker: the valuation
# runs in-process), photographed by Debian's chromium. Writes docs/screenshots/*.png.
SHOTS := $(shell mktemp -u /tmp/fairshare-screenshots-XXXXXX)
screenshots: venv
	mkdir -p $(SHOTS)
	env -u CELERY_BROKER_URL DATABASE_URL=sqlite:///$(SHOTS)/db.sqlite3 MEDIA_ROOT=$(SHOTS)/media LOG_LEVEL=WARNING sh -c '\
	  $(PY) manage.py migrate --noinput -v0 && $(PY) manage.py seed_demo && \
	  $(PY) manage.py take_screenshots --out docs/screenshots'
	rm -rf $(SHOTS)
