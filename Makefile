# The two commands of README: `make demo` and `make test`.
# DATABASE_URL / REDIS_URL / EMAIL_HOST switch from SQLite, the in-process queue and
# console e-mail to PostgreSQL, real Redis and SMTP.
#
# Other Wagtail/Django/Python combinations (what .ci/run does) get their own venv:
#   make test VENV=.venv-w74 PYTHON=python3.11 PIP_CONSTRAINTS=.ci/wagtail74-django52.txt

PYTHON ?= python3
VENV ?= .venv
# A pip constraints file pinning Wagtail/Django for this venv; empty: the newest that
# setup.cfg allows on $(PYTHON).
PIP_CONSTRAINTS ?=
PORT ?= 8000
PY := $(VENV)/bin/python
MANAGE := $(PY) example_site/manage.py
STAMP := $(VENV)/.installed-$(shell cat setup.cfg pyproject.toml $(PIP_CONSTRAINTS) | cksum | cut -d' ' -f1)

.PHONY: demo test install lint messages

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip

$(STAMP): $(PY) setup.cfg pyproject.toml $(PIP_CONSTRAINTS)
	$(PY) -m pip install --quiet -e ".[test,postgres,demo]" \
		$(if $(PIP_CONSTRAINTS),--constraint $(PIP_CONSTRAINTS))
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(MANAGE) migrate --noinput
	$(MANAGE) paidwebinar_demo --admin-password random
	@echo "Serving on http://127.0.0.1:$(PORT)/ (Ctrl+C stops)"
	$(MANAGE) runserver 127.0.0.1:$(PORT)

test: install
	$(PY) -m pytest $(PYTEST_ARGS)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	PYTHONPATH=.:example_site $(VENV)/bin/mypy

messages: install
	cd wagtail_paidwebinar && ../$(PY) ../example_site/manage.py makemessages -l pl --no-obsolete
	cd wagtail_paidwebinar && ../$(PY) ../example_site/manage.py compilemessages -l pl
