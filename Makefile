# The two set-up commands of the README:
#   make run    creates .venv when missing, installs the app, launches it (ARGS="FOLDER" to open one)
#   make test   creates .venv when missing, installs the app with its test tools, runs ruff, mypy, pytest
# The virtual environment is rebuilt when pyproject.toml or the constraints change.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
FACES_STAMP := $(VENV)/.installed-faces

.PHONY: run test system-deps lint typecheck pytest bench reliability screenshot clean

$(STAMP): pyproject.toml requirements/constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[test]'
	touch $(STAMP)

# The tests run with every extra: [faces] (mediapipe, ~1 GB), [cluster] (Ray) and [studio] (psycopg, for
# the PostgreSQL catalog tests) are installed for them, not for `make run`.
$(FACES_STAMP): $(STAMP)
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[test,faces,cluster,studio]'
	touch $(FACES_STAMP)

run: $(STAMP)
	$(VENV)/bin/clipiqa-desktop $(ARGS)

test: system-deps lint typecheck pytest

# Debian packages (requirements/debian.txt: Xvfb for the real-window test, exiftool and exiv2 that
# read back the XMP we write, PostgreSQL for the shared-catalog tests, which start their own
# throw-away server): installed when missing and we may (root or password-less sudo); otherwise
# those tests are skipped and say why (under CI=true a missing PostgreSQL fails them instead).
system-deps:
	@missing=$$(for p in $$(grep -v '^#' requirements/debian.txt); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q 'install ok installed' || echo $$p; done); \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if ! command -v apt-get >/dev/null; then echo "system-deps: no apt-get; the Xvfb, XMP read-back and PostgreSQL tests will be skipped"; exit 0; fi; \
	if [ "$$(id -u)" = 0 ]; then sudo=""; elif sudo -n true 2>/dev/null; then sudo="sudo -n"; \
	else echo "system-deps: not root; the Xvfb, XMP read-back and PostgreSQL tests will be skipped (missing: $$missing)"; exit 0; fi; \
	echo "system-deps: installing $$missing"; \
	$$sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$sudo apt-get install -y -qq $$missing >/dev/null \
		|| echo "system-deps: apt-get failed; the Xvfb, XMP read-back and PostgreSQL tests will be skipped"

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: $(FACES_STAMP)
	$(VENV)/bin/mypy

pytest: $(FACES_STAMP)
	$(VENV)/bin/python -m pytest $(PYTEST_ARGS)

bench: $(STAMP)
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[bench,faces,studio,cluster]'
	$(PY) benchmarks/scoring_speed.py
	$(PY) benchmarks/index_throughput.py
	$(PY) benchmarks/gui_latency.py
	$(PY) benchmarks/xmp_export.py
	$(PY) benchmarks/flag_accuracy.py
	$(PY) benchmarks/group_inputs.py
	$(PY) benchmarks/grouping.py
	$(PY) benchmarks/stacks.py
	$(PY) benchmarks/search.py
	$(PY) benchmarks/taste.py
	$(PY) benchmarks/compare_step.py
	$(PY) benchmarks/ray_throughput.py
	$(PY) benchmarks/catalog_backends.py

# Runs every failure case of docs/reliability.md against the real command line and rewrites that
# page; --memory first runs benchmarks/memory_50k.py (50,000 generated photos, ~20 minutes).
reliability: $(STAMP)
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[bench]'
	$(PY) benchmarks/reliability.py --memory

screenshot: $(STAMP) system-deps
	$(PY) -m pip install --quiet -c requirements/constraints.txt -e '.[bench]'
	$(PY) docs/screenshot.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build *.egg-info
