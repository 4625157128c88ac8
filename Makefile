# Two commands on a fresh machine: `make demo` and `make test` (see README.md).
VENV ?= .venv
PY := $(VENV)/bin/python
APT := DEBIAN_FRONTEND=noninteractive apt-get
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

.PHONY: demo test venv host-tools rv32-tools clean

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

# The RV32IMC cross compiler, its C library and the emulator that counts the host's instructions
# (tinyc/rv32.py), installed when missing.
rv32-tools:
	@command -v riscv64-unknown-elf-gcc >/dev/null && command -v qemu-system-riscv32 >/dev/null && \
	  test -f /usr/lib/picolibc/riscv64-unknown-elf/picolibc.specs || \
	  ($(SUDO) $(APT) update -qq && $(SUDO) $(APT) install -y -qq --no-install-recommends \
	    gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf qemu-system-misc)

# DS-CNN keyword spotting on DIANA: what runs where and why, then a run on the emulator with its
# modeled cycles beside the host-only baseline.
demo: venv host-tools
	$(VENV)/bin/tinyc report zoo:kws:int8 --target diana
	$(VENV)/bin/tinyc run zoo:kws:int8 --target diana --profile
	$(VENV)/bin/tinyc run zoo:kws:int8 --target cpu --profile

test: venv host-tools rv32-tools
	$(PY) -m pytest -q

clean:
	rm -rf $(VENV) build .pytest_cache
