# django-scout developer commands. Only python3 and make are needed: the first run builds .venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp

.PHONY: demo test test-pair test-matrix lint typecheck docs pytest coverage browser screenshots venv clean

venv: $(STAMP)

# pip installs uv (the dev extra's installer, which nox uses too); uv installs the rest, several
# times faster than pip.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip uv
	$(BIN)/uv pip install --quiet --python $(BIN)/python -e ".[test,docs,example,dev]"
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
	$(BIN)/mypy django_scout tests noxfile.py
	$(BIN)/mypy --config-file example_project/mypy.ini example_project

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --quiet --site-dir site

# The suite on every core (pytest-xdist); PYTEST_WORKERS=0 runs it in this one process.
PYTEST_WORKERS ?= auto
pytest: $(STAMP)
	$(BIN)/pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

## coverage: the pytest suite under coverage, then the report (fails under pyproject's floor)
coverage: $(STAMP)
	$(BIN)/coverage erase
	$(BIN)/coverage run -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)
	$(BIN)/coverage combine --quiet
	$(BIN)/coverage report

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

## test-pair: the pytest suite on one Python/Django pair (noxfile.py), e.g.
##   make test-pair PY=3.12 DJANGO=6.0 [PYTEST_ARGS="-x tests/test_conf.py"]
test-pair: $(STAMP)
	@test -n "$(PY)" -a -n "$(DJANGO)" || { echo "usage: make test-pair PY=3.12 DJANGO=6.0"; exit 2; }
	$(BIN)/nox -s tests-$(PY)-django$(DJANGO) -- $(PYTEST_ARGS)

## test-matrix: the pytest suite on every supported pair (nox -l lists them)
test-matrix: $(STAMP)
	$(BIN)/nox -- $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) .nox site dist build .mypy_cache .ruff_cache .pytest_cache .coverage .coverage.* \
		example_project/var \
		test-artifacts
