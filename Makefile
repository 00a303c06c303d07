# Outpost: the two commands are `make run` and `make test`. Each installs what it needs.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Debian packages the tests and the simulated site use (installed only when running as root).
#  iproute2/iputils-ping: namespaces and ping; snmpd/snmp: net-snmp agent and client (bench peer);
#  arp-scan: discovery bench peer; chromium(+driver): status-page browser tests;
#  strace: the store test that counts one fsync per commit; libpango/libpangoft2/fonts-dejavu-core:
#  WeasyPrint (home's report PDF); poppler-utils: pdftoppm, the PDF's page images in its test.
DEB_PKGS := iproute2 iputils-ping snmpd snmp arp-scan chromium chromium-driver strace postgresql haproxy libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core poppler-utils
IS_ROOT := $(shell [ "$$(id -u)" = 0 ] && echo yes)

.PHONY: run test lint bench deps venv clean cleanup install

deps:
ifeq ($(IS_ROOT),yes)
	@missing=""; for p in $(DEB_PKGS); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then echo "installing Debian packages:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; fi
	@# snmpd is only ever started by the simulated site; the Debian service must not run on the host.
	@for svc in snmpd postgresql haproxy; do \
	  if systemctl is-active --quiet $$svc 2>/dev/null; then systemctl disable --now $$svc >/dev/null 2>&1 || true; fi; \
	done
else
	@echo "not root: skipping Debian packages ($(DEB_PKGS)); namespace tests will be skipped with a reason"
endif

$(STAMP): pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy core services web hardware provisioning firmware home simsite bench tests

test: deps venv
	@$(PY) -m simsite cleanup >/dev/null 2>&1 || true
	$(MAKE) --no-print-directory lint
	$(PY) -m pytest $(PYTEST_ARGS)

run: deps venv
	$(PY) -m simsite.launch

bench: deps venv
	$(PY) -m pip install -q -e '.[dev,bench]'
	$(PY) -m bench

# On the Pi (Raspberry Pi OS Bookworm), as root: docs/install.md. Builds the release's wheels
# (the only step that needs the package registry), then installs them offline.
install:
	@[ -x build/venv/bin/pip ] || $(PYTHON) -m venv build/venv
	rm -rf build/wheels  # exactly one release's wheels: install.sh refuses a mix
	build/venv/bin/pip wheel -q -w build/wheels .
	sh firmware/system/install.sh --wheels build/wheels $(INSTALL_ARGS)

cleanup: venv
	$(PY) -m simsite cleanup

clean:
	rm -rf $(VENV) build *.egg-info .mypy_cache .ruff_cache .pytest_cache
