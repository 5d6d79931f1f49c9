# Two commands on a fresh machine: `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501

.PHONY: venv dev run study test lint chromium postgresql bench demo clean

venv: $(VENV)/.runtime-ok

# The package installed editable (the checkout is what runs); its dependencies are
# requirements.txt, read by pyproject.toml (one list).
$(VENV)/.runtime-ok: requirements.txt pyproject.toml setup.py
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e .
	touch $@

dev: $(VENV)/.dev-ok

$(VENV)/.dev-ok: $(VENV)/.runtime-ok requirements-dev.txt
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $@

# Debian's chromium for the browser tests (playwright drives /usr/bin/chromium; it downloads no browser).
chromium:
	@if [ -x /usr/bin/chromium ]; then echo "chromium present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null ) \
	    || echo "could not install chromium: the browser tests will be skipped (they say so)"; \
	else echo "no apt-get: browser tests will be skipped"; fi

# Debian's PostgreSQL server binaries for the study store's tests (they start and remove a
# temporary cluster of their own on a free port; the package's default cluster stays down).
postgresql:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then echo "postgresql present"; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  ( $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql >/dev/null ) \
	    || echo "could not install postgresql: the PostgreSQL tests will be skipped (they say so)"; \
	  for c in $$(ls /etc/postgresql 2>/dev/null); do for n in $$(ls /etc/postgresql/$$c); do \
	    $$SUDO pg_ctlcluster $$c $$n stop >/dev/null 2>&1 || true; done; done; \
	else echo "no apt-get: PostgreSQL tests will be skipped"; fi

# The app reads user-given paths only inside its data roots: by default this folder and the
# demo; `make run DATA_ROOTS="/data/prbench /data/gpr"` allows others (--data-root each).
run: venv
	$(BIN)/retbench app --port $(PORT) $(foreach d,$(DATA_ROOTS),--data-root $(d))

# A participant-only server for one user study, without Streamlit: every URL shows that
# study's participant screens and nothing else. `make study STUDY=NAME [PORT=8502]
# [ADDRESS=0.0.0.0] [WORKERS=2]` (ADDRESS=0.0.0.0 serves the network); participants open
# the link `retbench study new` printed (http://HOST:PORT/take?study=NAME...). Studies:
# $BENCH_STUDY_DIR or ./studies; BENCH_STUDY_DB=postgresql://... for a shared database.
ADDRESS ?= 127.0.0.1
STUDY_PORT ?= 8502
WORKERS ?= 2
study: venv
	@test -n "$(STUDY)" || { echo "usage: make study STUDY=NAME [STUDY_PORT=$(STUDY_PORT)] [ADDRESS=0.0.0.0] [WORKERS=2]"; exit 2; }
	$(BIN)/retbench study serve $(STUDY) --address $(ADDRESS) --port $(STUDY_PORT) --workers $(WORKERS)

lint: dev
	$(BIN)/ruff check .

test: dev chromium postgresql
	$(BIN)/ruff check .
	$(BIN)/python -m pytest -q

bench: dev
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_app.py

demo: venv
	$(BIN)/python -m bench demo

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
