# storecast: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(wildcard proto/storecast/v1/*.proto)
# protoc writes the stubs into the package they are imported from (storecast/v1/), not beside the sources.
GENERATED := $(patsubst proto/%.proto,%_pb2.py,$(PROTOS))
DEV_DIR := .dev
PKI_DIR := $(DEV_DIR)/pki
export STORECAST_DEV_DIR := $(abspath $(DEV_DIR))
# The console's charts: uPlot from the npm registry, checked against the integrity npm
# records for this version (`npm view uplot@VERSION dist.integrity`), vendored into the package.
UPLOT_VERSION := 1.6.32
UPLOT_INTEGRITY := sha512-KIMVnG68zvu5XXUbC4LQEPnhwOxBuLyW1AHtpm6IKTXImkbLgkMy+jabjLgSLMasNuGGzQm/ep3tOkyTxpiQIw==
CONSOLE_VENDOR := gateway/console/vendor
UPLOT_STAMP := $(CONSOLE_VENDOR)/.uplot-$(UPLOT_VERSION)

.PHONY: run test unit e2e browser soak bench lint typecheck proto pki clean vendor chromium prometheus

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The package lists gateway/console/vendor, which `make vendor` fills: it must exist before pip reads it.
$(VENV)/.installed: pyproject.toml | $(BIN)/python $(UPLOT_STAMP)
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# One protoc run regenerates every module when any .proto changes (the image
# runs the same one); a second writes mypy-protobuf's typed stubs (.pyi) of the
# messages and of the gRPC clients and servicers, for `make typecheck`.
$(GENERATED) &: $(PROTOS) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=. --grpc_python_out=. $(PROTOS)
	$(BIN)/python -m grpc_tools.protoc -Iproto --plugin=protoc-gen-mypy=$(BIN)/protoc-gen-mypy --mypy_out=. --plugin=protoc-gen-mypy_grpc=$(BIN)/protoc-gen-mypy_grpc --mypy_grpc_out=. $(PROTOS)

proto: $(GENERATED)

# admin.p12 is the browser's copy of the admin certificate (docs/console.md): a PKI
# made before it existed is made anew, with it.
$(PKI_DIR)/ca.cert.pem $(PKI_DIR)/admin.p12 &: | $(GENERATED)
	$(BIN)/storecast pki --out $(PKI_DIR)

pki: $(PKI_DIR)/ca.cert.pem $(PKI_DIR)/admin.p12

# npm and node only (the Dockerfile's node stage runs this target too): the tarball is
# hashed as npm would, and only the two files the console loads are taken out of it.
$(UPLOT_STAMP):
	command -v npm >/dev/null || (apt-get update && apt-get install -y npm)
	mkdir -p $(DEV_DIR)/npm $(CONSOLE_VENDOR)
	cd $(DEV_DIR)/npm && npm pack --silent uplot@$(UPLOT_VERSION) >/dev/null
	test "$$(node -e 'const data = require("fs").readFileSync(process.argv[1]); \
		process.stdout.write("sha512-" + require("crypto").createHash("sha512").update(data).digest("base64"))' \
		$(DEV_DIR)/npm/uplot-$(UPLOT_VERSION).tgz)" = "$(UPLOT_INTEGRITY)" \
		|| { echo "uplot-$(UPLOT_VERSION).tgz does not match its recorded integrity" >&2; exit 1; }
	tar -xzf $(DEV_DIR)/npm/uplot-$(UPLOT_VERSION).tgz -C $(CONSOLE_VENDOR) --strip-components=2 \
		package/dist/uPlot.iife.min.js package/dist/uPlot.min.css
	tar -xzf $(DEV_DIR)/npm/uplot-$(UPLOT_VERSION).tgz -O package/LICENSE > $(CONSOLE_VENDOR)/uPlot.LICENSE
	rm -f $(CONSOLE_VENDOR)/.uplot-* && touch $@

vendor: $(UPLOT_STAMP)

# The browser tests drive Debian's Chromium (Playwright cannot download its own here).
chromium:
	command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# The Prometheus query API's oracle (tests/test_prom_differential.py) and client (promtool): Debian's Prometheus.
prometheus:
	command -v prometheus >/dev/null && command -v promtool >/dev/null || (apt-get update && apt-get install -y prometheus)

run: $(GENERATED) $(PKI_DIR)/ca.cert.pem $(PKI_DIR)/admin.p12 $(UPLOT_STAMP)
	$(BIN)/storecast serve all

# Lint and types first: a change that breaks them does not land (.ci/run calls this target).
test: lint typecheck docs $(GENERATED) $(UPLOT_STAMP) chromium prometheus
	$(BIN)/python -m pytest -q --durations=15 tests

# One tier each (tests/conftest.py gives every test its tier). The unit tier names its folder
# only to spare importing the end-to-end modules (schemathesis builds its tests while collecting).
unit: $(GENERATED)
	$(BIN)/python -m pytest -q -m unit tests/unit

e2e: $(GENERATED) prometheus
	$(BIN)/python -m pytest -q --durations=15 -m e2e tests

browser: $(GENERATED) $(UPLOT_STAMP) chromium
	$(BIN)/python -m pytest -q -m browser tests

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# mypy reads the tree as it is: folders are import paths.
# tests/bench holds scripts that import each other as top-level modules: a run of their own.
MYPY_CACHE ?= $(DEV_DIR)/mypy-cache
MYPY = $(BIN)/mypy --config-file pyproject.toml
typecheck: $(GENERATED)
	$(MYPY) --cache-dir $(MYPY_CACHE)/package storecast gateway services tests deploy/capacity --exclude '^tests/bench/'
	cd tests/bench && MYPYPATH=$(CURDIR) $(abspath $(BIN))/mypy --config-file $(CURDIR)/pyproject.toml \
		--cache-dir $(abspath $(MYPY_CACHE))/bench *.py

# The documentation site (mkdocs.yml, docs/) into .dev/site: --strict, so a broken link or anchor fails `make test`.
.PHONY: docs
# (NO_MKDOCS_2_WARNING: Material's end-of-life notice, printed on every build, says nothing of these docs.)
docs: $(VENV)/.installed
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict

# The long versions of the load, fault, fuzzing and memory tests; -s prints what they measured.
soak: $(GENERATED)
	STORECAST_SOAK_SECONDS=$${STORECAST_SOAK_SECONDS:-120} \
	STORECAST_FUZZ_EXAMPLES=$${STORECAST_FUZZ_EXAMPLES:-50} STORECAST_FUZZ_COVERAGE=$${STORECAST_FUZZ_COVERAGE:-all} \
	STORECAST_PUT_FUZZ_EXAMPLES=$${STORECAST_PUT_FUZZ_EXAMPLES:-100} \
	STORECAST_MEMORY_PUTS=$${STORECAST_MEMORY_PUTS:-4} \
	$(BIN)/python -m pytest -q -s -m soak tests

# Extra options: make bench BENCH_ARGS="--quick" (see tests/bench/run.py --help).
bench: $(GENERATED) $(PKI_DIR)/ca.cert.pem
	$(BIN)/python tests/bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEV_DIR) $(CONSOLE_VENDOR) storecast/v1/*_pb2*.py storecast/v1/*_pb2*.pyi
