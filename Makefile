# CodexField: every target installs what it needs from nothing, then reuses it.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := $(CURDIR)/.venv
TOOLS := $(CURDIR)/.tools/bin
ABI_DATA := codexfield/abi/contracts.json
export PATH := $(TOOLS):$(VENV)/bin:$(CURDIR)/node_modules/.bin:$(PATH)
export HYPOTHESIS_PROFILE ?= ci

.PHONY: setup test test-fast demo gas compile abi wheel clean lint format

setup: $(VENV)/.installed $(TOOLS)/anvil $(TOOLS)/solc $(ABI_DATA)

# The contract types the installed package carries (codexfield/contracts.py), generated from
# ape's build output; tests/integrators/test_install.py checks they are current.
$(ABI_DATA): $(wildcard contracts/*.vy contracts/*/*.vy contracts/*/*.sol interfaces/*.vyi) tools/gen_contract_types.py | $(VENV)/.installed $(TOOLS)/anvil $(TOOLS)/solc
	ape compile
	python tools/gen_contract_types.py

abi: $(ABI_DATA)

# The wheel an integrator installs (core SDK + CLI; extras: indexer, node, bots, plots, test).
wheel: setup
	rm -rf dist && $(VENV)/bin/pip wheel -q --no-deps -w dist .
	ls dist/*.whl

$(VENV)/.installed: pyproject.toml
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[all]'
	touch $@

node_modules/.installed: package.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

# The npm package ships the native anvil binary in a per-platform optional dependency;
# link that binary (not the node wrapper) so ape-foundry manages the real process.
$(TOOLS)/anvil: node_modules/.installed
	mkdir -p $(TOOLS)
	ln -sf "$$(ls -d $(CURDIR)/node_modules/@foundry-rs/anvil-*/bin/anvil | head -1)" $@
	$@ --version | head -1

# ape-solidity needs a native-looking `solc`: a shim over solcjs from npm (no compiler downloads).
# py-solc-x (under ape-solidity) only uses compilers in its install folder (~/.solcx): link the
# shim there as solc-v<version> (a symlink, so the shim still finds node_modules through readlink).
$(TOOLS)/solc: tools/solc-shim.sh node_modules/.installed $(VENV)/.installed
	mkdir -p $(TOOLS)
	ln -sf ../../tools/solc-shim.sh $@
	$@ --version | tail -1
	dir="$$($(VENV)/bin/python -c 'import solcx; print(solcx.get_solcx_install_folder())')" && mkdir -p "$$dir" && \
	  ln -sfn "$(CURDIR)/tools/solc-shim.sh" "$$dir/solc-v$$($@ --version | sed -n 's/^Version: \([0-9.]*\)+.*/\1/p')"

compile: setup
	ape compile --force
	python tools/gen_contract_types.py

# The indexer tests run against SQLite and a PostgreSQL on loopback; the catalog page is tested
# in Debian's headless Chromium. Both are installed from Debian packages when missing (root).
# Two shards side by side (tools/test_shards.sh): chain-heavy contract tests in one, subprocess-
# and service-heavy tests in the other; together they cover tests/ (a test checks it).
TEST_SHARDS := tests/contracts,tests/gas,tests/offchain tests/integration,tests/indexer,tests/cli,tests/integrators

test: setup
	tools/ensure_chromium.sh
	ape compile --force
	python tools/gen_contract_types.py
	export CODEXFIELD_TEST_PG_URL="$$(tools/ensure_postgres.sh)" && tools/test_shards.sh $(TEST_SHARDS)
	python -m codexfield.gas_table README.md

test-fast: setup
	ape test tests -x -p no:cacheprovider

# The rows come from `tx.gas_used` in tests/gas (each asserts its DESIGN §6 target); the table is
# rendered even when some targets fail, and make then fails. ape's `--gas` call-tree report is
# not used here: with it, ape 0.8.51 cannot decode some struct-returning view calls
# (ape_ethereum decode_returndata -> TypeError) and aborts tests that read them.
gas: setup
	rm -rf .gas
	ape test tests/gas -p no:cacheprovider | tee .gas-report.txt; status=$${PIPESTATUS[0]}; \
	  python -m codexfield.gas_table README.md && exit $$status

demo: setup
	ape run demo

# Habits (docs/STATIC_ANALYSIS.md): ruff for Python, mamushi for Vyper formatting, natrix for Vyper
# static analysis (each finding fixed or accepted with its reason in docs/STATIC_ANALYSIS.md).
# mamushi pins click==8.1.3, which ape's click>=8.1.6 excludes: installed without its pins.
VYPER_SOURCES := contracts interfaces
# The contracts whose interfaces/I<name>.vyi carry every stub's NatSpec (tools/interface_natspec.py).
DEPLOYABLES := AccessStaking CapsuleRegistry IdentityRegistry LicenseManager Reputation RoyaltyRouter UsageMeter
MAMUSHI := mamushi -l 120

$(VENV)/.mamushi: | $(VENV)/.installed
	$(VENV)/bin/pip install -q --no-deps 'mamushi==0.1.2' 'pathspec>=0.9' 'mypy-extensions>=1.1'
	touch $@

lint: $(VENV)/.installed $(VENV)/.mamushi
	ruff check .
	ruff format --check .
	$(MAMUSHI) --check $(VYPER_SOURCES)
	python tools/natrix_check.py
	python tools/interface_natspec.py --check $(DEPLOYABLES)

format: $(VENV)/.installed $(VENV)/.mamushi
	ruff check --fix .
	ruff format .
	$(MAMUSHI) $(VYPER_SOURCES)

clean:
	rm -rf .build .tools node_modules $(VENV)
