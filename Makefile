# Two commands do all set-up on a fresh machine (see README.md):
#   make demo   installs everything, then runs the monitor on the embedded default stream
#   make test   installs everything (incl. Prometheus/Alertmanager binaries), runs all tests
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
EVENTS ?= 5000

.PHONY: install system-deps demo test lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	# torch first and pinned: this version is a CPU build on local disk here; any other
	# spec would pull a multi-GB CUDA build
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e '.[fast,dev]'
	touch $(STAMP)

install: $(STAMP)

# promtool/prometheus, alertmanager and systemd-analyze for the observability, alert and
# deployment tests. As root they are installed, and then a missing one fails the suite
# (MONITOR_REQUIRE_TOOLS=1) instead of skipping its tests.
# (the same tools the tests require: tests/tools.py)
TOOLS_OK = for t in prometheus promtool amtool systemd-analyze openssl; do \
	  command -v $$t >/dev/null || exit 1; done; \
	command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null
system-deps:
	@if ! ( $(TOOLS_OK) ); then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      prometheus prometheus-alertmanager systemd openssl >/dev/null; \
	  else \
	    echo "note: run as root (or install the Debian packages prometheus, prometheus-alertmanager and systemd) for the Prometheus/Alertmanager/systemd tests; they skip meanwhile"; \
	  fi; \
	fi

demo: install
	$(BIN)/monitor demo --events $(EVENTS)

test: install system-deps
	MONITOR_REQUIRE_TOOLS=$$([ "$$(id -u)" = 0 ] && echo 1) $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check monitor tests
	$(BIN)/mypy monitor

bench: install
	$(BIN)/monitor bench --events 2000

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
