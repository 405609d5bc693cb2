# django-scout developer commands. Only python3 and make are needed: the first run builds .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck docs pytest venv clean

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

clean:
	rm -rf $(VENV) site dist build .mypy_cache .ruff_cache .pytest_cache example_project/var
