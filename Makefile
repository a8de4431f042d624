# bigmap: `make demo` and `make test` set everything up on a fresh machine and run.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
PIP    := $(VENV)/bin/pip
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
# The CPU build of PyTorch that lies on this disk; install it before anything asks for torch.
TORCH  ?= torch==2.13.0
PYTEST_ARGS ?=

.PHONY: demo test test-fast lint bench clean install chromium mdbtools

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip

$(STAMP): $(PY) pyproject.toml Makefile
	$(PIP) install --quiet "$(TORCH)"
	$(PIP) install --quiet -e ".[all,test]"
	rm -f $(VENV)/.installed-*
	touch $(STAMP)

install: $(STAMP) mdbtools

demo: $(STAMP)
	$(VENV)/bin/bigmap demo

test: $(STAMP) chromium mdbtools
	$(VENV)/bin/ruff check src tests benchmarks
	$(PY) -m pytest -q $(PYTEST_ARGS)

# the unit tier only (no broker, no PostgreSQL, no browser, no slow science): your own loop
test-fast: $(STAMP)
	$(PY) -m pytest -q -m "unit and not slow" $(PYTEST_ARGS)

# the dashboard's browser tests drive Debian's Chromium (never a downloaded browser)
chromium:
	@test -x /usr/bin/chromium || { apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

# Arbin .res files are Microsoft Access databases: bigmap reads them with Debian's mdbtools
mdbtools:
	@test -x /usr/bin/mdb-export || { apt-get update -qq >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mdbtools >/dev/null; }

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) .pytest_cache build src/*.egg-info
