# The two commands a new user runs: `make run` (install, start a 4-node network, demonstrate the
# invoice life cycle) and `make test`. Both create .venv and install into it on first use.
PYTHON ?= python3
VENV   ?= .venv
PY      = $(VENV)/bin/python
STAMP   = $(VENV)/.installed

.PHONY: install run stop test test-fast bench bench-core sim chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check --upgrade pip
	$(PY) -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $(STAMP)

run: $(STAMP)
	$(PY) scripts/demo.py --dir demo-net

stop: $(STAMP)
	@test -f demo-net/network.json && $(PY) -m chainvoice net down demo-net || echo "no demo network to stop"

# The browser tests (tests/browser) drive Debian's /usr/bin/chromium; scripts/install_browser.sh
# installs it (apt-get) and playwright once. If that fails the stamp is not written (so the next
# run retries) and the tests still run: the browser tests then FAIL saying what is missing.
BROWSER_STAMP = $(VENV)/.browser

.PHONY: browser
browser: $(BROWSER_STAMP)

$(BROWSER_STAMP): scripts/install_browser.sh | $(STAMP)
	@if PYTHON=$(PY) bash scripts/install_browser.sh; then touch $@; \
	else echo "make: scripts/install_browser.sh failed; the browser tests will fail until it succeeds" >&2; fi

test: $(STAMP) $(BROWSER_STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP) $(BROWSER_STAMP)
	$(PY) -m pytest -q -x -m "not slow"

bench: $(STAMP)
	$(PY) scripts/bench.py --duration $${DURATION:-60} $${BENCH_ARGS}

bench-core: $(STAMP)
	$(PY) scripts/bench_core.py

sim: $(STAMP)
	$(PY) scripts/sim.py --seeds 2000 --n 4

chaos: $(STAMP)
	$(PY) scripts/chaos.py --duration $${DURATION:-180} $${CHAOS_ARGS}

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
