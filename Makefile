# Two commands on a fresh Debian machine: `make demo` and `make test`.
# Everything either needs is installed here: a virtualenv in .venv, the package, and (later) Debian services.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test lint typecheck install system-deps clean bench-venv

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "gaitsym needs Python >= 3.11")'
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP) system-deps

# Debian packages the tests and the demo start themselves (installed only when missing):
# "probe:package", the probe being a file or a command on PATH.
SYSTEM_DEPS := /usr/sbin/mosquitto:mosquitto /usr/bin/mosquitto_sub:mosquitto-clients /usr/bin/dbus-daemon:dbus /usr/bin/influxd:influxdb /usr/bin/influx:influxdb-client /usr/bin/qemu-system-x86_64:qemu-system-x86 /usr/bin/openssl:openssl /usr/bin/systemd-analyze:systemd /usr/bin/chromium:chromium
system-deps:
	@GAITSYM_SYSTEM_DEPS="$(SYSTEM_DEPS)" bash deploy/install-system-deps.sh

demo: install
	$(PY) -m gaitsym.cli demo

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports  # the layer contracts in pyproject.toml: an upward import fails the build

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# Two pytest workers (the machine has 2 cores; many tests wait on real-time streams and servers); one test
# file per worker, so module-scoped servers and caches (the BLE VM image) are never built twice at once.
test: install lint typecheck
	$(PY) -m pytest -q -n 2 --dist loadfile

# Benchmarks that compare against mobgap (the Mobilise-D pipeline) run in their own virtualenv, so that
# mobgap's heavy dependencies never leak into the test environment. Each figure's command is in bench/RESULTS.md.
BENCH_VENV := .venv-bench
$(BENCH_VENV)/.installed-stamp: pyproject.toml
	@test -x $(BENCH_VENV)/bin/python || $(PYTHON) -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(BENCH_VENV)/bin/python -m pip install --quiet -e . 'mobgap==1.2.0' 'pingouin<0.7'
	@touch $@
bench-venv: $(BENCH_VENV)/.installed-stamp

clean:
	rm -rf $(VENV) $(BENCH_VENV) .pytest_cache .mypy_cache .ruff_cache
