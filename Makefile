# storecast: `make run` and `make test` do all the set-up on a fresh machine.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
PROTOS := $(wildcard proto/storecast/v1/*.proto)
GENERATED := $(PROTOS:.proto=_pb2.py)
DEV_DIR := .dev
PKI_DIR := $(DEV_DIR)/pki
export STORECAST_DEV_DIR := $(abspath $(DEV_DIR))

.PHONY: run test soak bench lint proto pki clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# One protoc run regenerates every stub when any .proto changes.
$(GENERATED) &: $(PROTOS) $(VENV)/.installed
	$(BIN)/python -m grpc_tools.protoc -Iproto --python_out=proto --pyi_out=proto --grpc_python_out=proto $(PROTOS)

proto: $(GENERATED)

$(PKI_DIR)/ca.cert.pem: | $(GENERATED)
	$(BIN)/storecast pki --out $(PKI_DIR)

pki: $(PKI_DIR)/ca.cert.pem

run: $(GENERATED) $(PKI_DIR)/ca.cert.pem
	$(BIN)/storecast serve all

# Lint first: a change that breaks it does not land (.ci/run calls this target).
test: lint $(GENERATED)
	$(BIN)/python -m pytest -q tests

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# The long versions of the load, fault, fuzzing and memory tests; -s prints what they measured.
soak: $(GENERATED)
	STORECAST_SOAK_SECONDS=$${STORECAST_SOAK_SECONDS:-120} \
	STORECAST_FUZZ_EXAMPLES=$${STORECAST_FUZZ_EXAMPLES:-50} STORECAST_FUZZ_COVERAGE=$${STORECAST_FUZZ_COVERAGE:-all} \
	STORECAST_PUT_FUZZ_EXAMPLES=$${STORECAST_PUT_FUZZ_EXAMPLES:-100} \
	STORECAST_MEMORY_PUTS=$${STORECAST_MEMORY_PUTS:-4} \
	$(BIN)/python -m pytest -q -s tests/test_load.py tests/test_faults.py tests/test_contract_fuzz.py tests/test_put_fuzz.py tests/test_memory.py

# Extra options: make bench BENCH_ARGS="--quick" (see tests/bench/run.py --help).
bench: $(GENERATED) $(PKI_DIR)/ca.cert.pem
	$(BIN)/python tests/bench/run.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) $(DEV_DIR) proto/storecast/v1/*_pb2*.py proto/storecast/v1/*_pb2*.pyi
