# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
APT := DEBIAN_FRONTEND=noninteractive apt-get
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test venv host-tools clean

$(VENV)/.installed: setup.cfg pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $@

venv: $(VENV)/.installed

# The C compiler every emitted model is built with, installed when missing.
host-tools:
	@command -v gcc >/dev/null && command -v size >/dev/null || \
	  ($(SUDO) $(APT) update -qq && $(SUDO) $(APT) install -y -qq gcc binutils libc6-dev)

demo: venv host-tools
	$(VENV)/bin/tinyc report zoo:kws:int8 --target cpu
	$(VENV)/bin/tinyc run zoo:kws:int8 --target cpu

test: venv host-tools
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build .pytest_cache
