# django-scout developer commands. Only python3 and make are needed: the first run builds .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-django42 lint typecheck docs pytest browser screenshots venv clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[test,docs,example]"
	touch $(STAMP)

## demo: fake Scout + the example site + a real Celery worker; stays up for the admin (Ctrl-C)
demo: $(STAMP)
	cd example_project && ../$(BIN)/python manage.py scout_demo $(DEMO_ARGS)

## test: everything CI checks — ruff, mypy, the strict docs build and the whole pytest suite
test: lint typecheck docs pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy django_scout tests
	$(BIN)/mypy --config-file example_project/mypy.ini example_project

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir site

pytest: $(STAMP)
	$(BIN)/pytest

## browser: only the browser suite (headless Chromium; screenshots in test-artifacts/browser/)
browser: $(STAMP)
	$(BIN)/pytest tests/browser

## screenshots: run the browser suite (Chromium required) and copy its admin screenshots to the docs
DOC_SCREENSHOTS := login index interaction-changelist interaction-change callbackdelivery-change \
	workflowrun-changelist workflowrun-change dashboard interactionevent-changelist
screenshots: $(STAMP)
	SCOUT_REQUIRE_BROWSER=1 SCOUT_BROWSER_ARTIFACTS=$(CURDIR)/test-artifacts/browser \
		$(BIN)/pytest -q tests/browser
	mkdir -p docs/img/admin
	for name in $(DOC_SCREENSHOTS); do cp test-artifacts/browser/$$name.png docs/img/admin/; done

## test-django42: the pytest suite against Django 4.2 LTS, in its own virtualenv
COMPAT_VENV ?= .venv-django42
$(COMPAT_VENV)/.installed-stamp: pyproject.toml
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(COMPAT_VENV)/bin/python -m pip install --quiet -e ".[test,example]" "Django>=4.2,<5.0"
	touch $@

test-django42: $(COMPAT_VENV)/.installed-stamp
	$(COMPAT_VENV)/bin/python -c "import django; assert django.VERSION[:2] == (4, 2), django.VERSION"
	$(COMPAT_VENV)/bin/pytest -q

clean:
	rm -rf $(VENV) $(COMPAT_VENV) site dist build .mypy_cache .ruff_cache .pytest_cache example_project/var \
		test-artifacts
