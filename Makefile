# ML Service: the README's commands.
#   make run    install what the service runs, then run redis-server, Celery, Gunicorn and
#               NGINX on 127.0.0.1:8880 (other ports: make run PORT=9000 REDIS_PORT=6380 API_PORT=8001)
#   make test   set up with the test and lint tools, then run the whole test suite against the
#               real stack (and Chromium)
#   make test-fast   the unit and route tiers only (a redis-server, no stack): under a minute
#   make lint   ruff check, ruff format --check, mypy on src/
#   make docs   the documentation site (docs/, MkDocs) into var/site, warnings as errors
#   make up     the same stack in Docker Compose (docker compose up --build; PORT=9000 too)
#   make bench  the service against the HTTP floor and its peers (MLflow serve, BentoML,
#               MLServer) (wrk), batch, scoring, upload, training; prints a table, writes
#               var/bench/results.json (parts: make bench BENCH_ARGS="--only single-row")
#   make bench-gunicorn   single-row predict over a matrix of Gunicorn worker settings
#   make fuzz   schemathesis over ml-service.yml against the real stack (fixed seed, bounded)
#   make test-compose   scale-out tests in Docker Compose (3 api, 3 worker replicas; needs Docker)

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PYPROJECTS_SUM := $(shell cat pyproject.toml src/client/pyproject.toml | cksum | cut -d' ' -f1)
# Two stamps: what make run needs (the package and the client), and the test and
# lint tools on top of it (make test, make lint; about 1 GB more). Either can be
# made first from a clean clone; a change of either pyproject.toml redoes both.
RUN_STAMP := $(VENV)/.installed-run-$(PYPROJECTS_SUM)
STAMP := $(VENV)/.installed-dev-$(PYPROJECTS_SUM)
COMPOSE := $(shell docker compose version >/dev/null 2>&1 && echo "docker compose" || echo docker-compose)

BENCH_VENV := .bench-venv
BENCH_STAMP := $(BENCH_VENV)/.installed-$(shell cat tests/bench/requirements.txt | cksum | cut -d' ' -f1)
BENTOML_VENV := .bench-bentoml-venv
BENTOML_STAMP := $(BENTOML_VENV)/.installed-$(shell cat tests/bench/requirements-bentoml.txt | cksum | cut -d' ' -f1)
MLSERVER_VENV := .bench-mlserver-venv
MLSERVER_STAMP := $(MLSERVER_VENV)/.installed-$(shell cat tests/bench/requirements-mlserver.txt | cksum | cut -d' ' -f1)
BENCH_ARGS ?=

FUZZ_VENV := .fuzz-venv
FUZZ_STAMP := $(FUZZ_VENV)/.installed-$(shell cat tests/fuzz/requirements.txt | cksum | cut -d' ' -f1)
FUZZ_ARGS ?=

# make run's ports: NGINX (the public one), redis-server and Gunicorn; make up
# publishes NGINX on PORT.
PORT ?= 8880
REDIS_PORT ?= 6379
API_PORT ?= 8000

# Shell for a recipe that has listed absent OS packages in $$missing (Debian
# names): install them as root with apt-get, or say which to install.
INSTALL_MISSING = if [ -n "$$missing" ]; then \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; \
	else \
		echo "missing OS packages:$$missing; install them, e.g. sudo apt-get install$$missing"; exit 1; \
	fi; \
fi

.PHONY: setup run-setup os-packages test-os-packages bench-os-packages config run test test-fast lint docs bench bench-gunicorn fuzz up down clean test-compose

# Development: everything (make test, make lint, pytest by hand).
setup: os-packages $(STAMP) config

# make run: the service alone.
run-setup: os-packages $(RUN_STAMP) config

# The package itself, editable (the code runs from src/), and the client.
$(RUN_STAMP): pyproject.toml src/client/pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -e .
	$(PY) -m pip install --quiet --disable-pip-version-check -e src/client
	rm -f $(VENV)/.installed-run-* && touch $@

# ... with its test, lint and docs tools (make test builds the docs site too).
$(STAMP): $(RUN_STAMP)
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test,lint,docs]'
	rm -f $(VENV)/.installed-dev-* && touch $@

# redis-server and nginx come from the OS packages (Debian/Ubuntu names), and the
# OpenMP runtime XGBoost and LightGBM load (libgomp1).
os-packages:
	@missing=""; \
	command -v redis-server >/dev/null 2>&1 || missing="$$missing redis-server"; \
	{ command -v nginx >/dev/null 2>&1 || test -x /usr/sbin/nginx; } || missing="$$missing nginx-light"; \
	{ ldconfig -p 2>/dev/null | grep -q libgomp.so.1 || ls /usr/lib/*/libgomp.so.1 >/dev/null 2>&1; } || missing="$$missing libgomp1"; \
	$(INSTALL_MISSING)

# The browser tests drive Debian's chromium (Playwright cannot download one here),
# with a font so that screenshots show text.
test-os-packages:
	@missing=""; \
	test -x /usr/lib/chromium/chromium || missing="$$missing chromium"; \
	command -v promtool >/dev/null 2>&1 || missing="$$missing prometheus"; \
	test -e /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf || missing="$$missing fonts-dejavu-core"; \
	$(INSTALL_MISSING)

# Missing config files are written from their templates (Redis passwords are
# generated by redis/render-acl.sh when the stack starts).
config: $(RUN_STAMP)
	$(PY) -m mlservice init-config

# HTTPS: make run TLS_CERT=cert.pem TLS_KEY=key.pem (or MLSERVICE_TLS_CERT/_KEY in the shell).
TLS_CERT ?=
TLS_KEY ?=

run: run-setup
	$(PY) -m mlservice.stack --port $(PORT) --redis-port $(REDIS_PORT) --api-port $(API_PORT)$(if $(TLS_CERT), --tls-cert $(TLS_CERT))$(if $(TLS_KEY), --tls-key $(TLS_KEY))

test: setup test-os-packages
	$(PY) -m pytest

# The unit and route tiers alone (no stack, no browser, nothing slow): under a minute.
test-fast: setup
	$(PY) -m pytest -m "(unit or route) and not slow" -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/mypy

# The documentation site: docs/*.md as laid out by mkdocs.yml, built into var/site
# (git-ignored; site_dir in mkdocs.yml). --strict turns every warning (a broken link or
# anchor, a page not in the nav) into a failure. NO_MKDOCS_2_WARNING silences
# mkdocs-material's banner about its end of life (May 2027), which is not a build warning.
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict

# The benchmark's own environment: MLflow is never a dependency of the service.
$(BENCH_STAMP): tests/bench/requirements.txt
	test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r tests/bench/requirements.txt
	rm -f $(BENCH_VENV)/.installed-* && touch $@

# The other peers, each in an environment of its own (their pins would fight each other's).
$(BENTOML_STAMP): tests/bench/requirements-bentoml.txt
	test -x $(BENTOML_VENV)/bin/python || $(PYTHON) -m venv $(BENTOML_VENV)
	$(BENTOML_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r tests/bench/requirements-bentoml.txt
	rm -f $(BENTOML_VENV)/.installed-* && touch $@

$(MLSERVER_STAMP): tests/bench/requirements-mlserver.txt
	test -x $(MLSERVER_VENV)/bin/python || $(PYTHON) -m venv $(MLSERVER_VENV)
	$(MLSERVER_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r tests/bench/requirements-mlserver.txt
	rm -f $(MLSERVER_VENV)/.installed-* && touch $@

# The load generator (wrk) and curl for the upload, from the OS packages.
bench-os-packages:
	@missing=""; \
	command -v wrk >/dev/null 2>&1 || missing="$$missing wrk"; \
	command -v curl >/dev/null 2>&1 || missing="$$missing curl"; \
	$(INSTALL_MISSING)

bench: setup bench-os-packages $(BENCH_STAMP) $(BENTOML_STAMP) $(MLSERVER_STAMP)
	$(PY) tests/bench/bench.py --mlflow-python $(BENCH_VENV)/bin/python \
		--bentoml-python $(BENTOML_VENV)/bin/python --mlserver-python $(MLSERVER_VENV)/bin/python \
		$(BENCH_ARGS)

# Single-row predict on each Gunicorn setting of a small matrix (how the defaults were chosen).
bench-gunicorn: setup bench-os-packages
	$(PY) tests/bench/gunicorn_matrix.py $(BENCH_ARGS)

# Schemathesis has its own environment too: it is never a dependency of the service.
$(FUZZ_STAMP): tests/fuzz/requirements.txt
	test -x $(FUZZ_VENV)/bin/python || $(PYTHON) -m venv $(FUZZ_VENV)
	$(FUZZ_VENV)/bin/python -m pip install --quiet --disable-pip-version-check \
		-r tests/fuzz/requirements.txt
	rm -f $(FUZZ_VENV)/.installed-* && touch $@

fuzz: setup $(FUZZ_STAMP)
	$(PY) tests/fuzz/fuzz.py --st $(FUZZ_VENV)/bin/st $(FUZZ_ARGS)

# Not part of make test: builds docker-compose.yml, runs it with 3 api and 3 worker
# replicas (project mlservice-scale-test), prints requests per replica and trainings
# per worker, and brings it down with its volumes. Minutes, on 2 cores.
test-compose: $(STAMP)
	MLSERVICE_TEST_COMPOSE=1 MLSERVICE_COMPOSE="$(COMPOSE)" $(PY) -m pytest tests/compose -s

# PORT from the command line (or the environment) wins over MLSERVICE_PORT in .env.
up:
	$(if $(filter command line environment,$(origin PORT)),MLSERVICE_PORT=$(PORT)) $(COMPOSE) up --build

down:
	$(COMPOSE) down

clean:
	rm -rf $(VENV) $(BENCH_VENV) $(BENTOML_VENV) $(MLSERVER_VENV) $(FUZZ_VENV) var
