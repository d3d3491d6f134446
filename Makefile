# Two commands do all set-up on a fresh machine (see README.md):
#   make demo   installs everything, then runs the monitor on the embedded default stream
#   make test   installs everything (incl. Prometheus/Alertmanager binaries), runs all tests
VENV   ?= .venv
PYTHON ?= python3
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
INSTALL_LOG := $(VENV)/install.log
EVENTS ?= 5000

.PHONY: install system-deps demo test lint bench clean

# `logged WHAT CMD...` runs one install step quietly: its output (pip's, with setuptools'
# pages of BuildBackendWarning text about the editable install) goes to $(INSTALL_LOG); a
# step that fails prints its own output and the log's path, and returns its exit status,
# which stops make. tests/unit/test_makefile_install.py runs this recipe with a fake pip.
LOGGED = logged() { what=$$1; shift; echo "  $$what"; \
	if "$$@" >$(INSTALL_LOG).step 2>&1; then rc=0; else rc=$$?; fi; \
	cat $(INSTALL_LOG).step >>$(INSTALL_LOG); \
	if [ $$rc -ne 0 ]; then cat $(INSTALL_LOG).step >&2; \
	  echo "make: installing $$what failed (exit $$rc); pip's whole output is in $(INSTALL_LOG)" >&2; \
	fi; rm -f $(INSTALL_LOG).step; return $$rc; }

# torch first and pinned: this version is a CPU build on local disk here; any other spec
# would pull a multi-GB CUDA build
$(STAMP): pyproject.toml
	@echo "installing into $(VENV) (a few minutes the first time; pip's output: $(INSTALL_LOG))"
	@$(PYTHON) -m venv $(VENV)
	@$(LOGGED); : >$(INSTALL_LOG); \
	logged "pip" $(BIN)/pip install --quiet --upgrade pip && \
	logged "torch==2.13.0 (CPU build)" $(BIN)/pip install --quiet torch==2.13.0 && \
	logged "monitor and its dependencies" $(BIN)/pip install --quiet -e '.[fast,dev]'
	@touch $(STAMP)

install: $(STAMP)

# promtool/prometheus, alertmanager, systemd-analyze and chromium for the observability,
# alert, deployment and HTML report tests. As root they are installed, and then a missing
# one fails the suite (MONITOR_REQUIRE_TOOLS=1) instead of skipping its tests.
# (the same tools the tests require: tests/tools.py)
TOOLS_OK = for t in prometheus promtool amtool systemd-analyze openssl chromium; do \
	  command -v $$t >/dev/null || exit 1; done; \
	command -v prometheus-alertmanager >/dev/null || command -v alertmanager >/dev/null
system-deps:
	@if ! ( $(TOOLS_OK) ); then \
	  if [ "$$(id -u)" = 0 ]; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      prometheus prometheus-alertmanager systemd openssl chromium >/dev/null; \
	  else \
	    echo "note: run as root (or install the Debian packages prometheus, prometheus-alertmanager, systemd and chromium) for the Prometheus/Alertmanager/systemd/HTML report tests; they skip meanwhile"; \
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
