# Tiaobo developer commands. A newcomer needs two: `make demo` and `make test`.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
UV     := $(BIN)/uv
STAMP  := $(VENV)/.installed

.PHONY: install browser redis bench-install bench-workbench screenshots demo test test-unit test-integration lint typecheck lock docs clean \
	bench-extract bench-validate bench-forecast bench-policy bench-policy-real bench-transfers bench-replay bench-load \
	bench-night

## install: create .venv and install the exact pins of requirements.lock, then this project (editable)
install: $(STAMP)
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet uv==0.13.8
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

## bench-install: add the benchmark-only peers (statsforecast) on top of the same pins
bench-install: install
	$(UV) pip sync --quiet --compile-bytecode --python $(BIN)/python requirements-bench.lock
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e .

## demo: generate the demo ERP, then five business nights with a simulated planner and warehouse
demo: install
	$(BIN)/tiaobo demo --nights 5

## browser: Debian's chromium for the workbench's browser tests (Playwright drives it; never `playwright install`)
browser:
	command -v chromium >/dev/null && fc-list :lang=zh | grep -q . || (apt-get update && apt-get install -y chromium fonts-wqy-microhei)

## redis: Debian's redis-server for the Celery executor integration test (broker on a loopback port)
redis:
	command -v redis-server >/dev/null || (apt-get update && apt-get install -y redis-server)

## test: the whole suite (unit, integration against local PostgreSQL/MariaDB/SMTP, end-to-end DAG)
test: install browser redis
	$(BIN)/python -m pytest

test-unit: install
	$(BIN)/python -m pytest tests/unit

test-integration: install browser redis
	$(BIN)/python -m pytest -m "integration or e2e"

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: install
	$(BIN)/mypy

## lock: re-pin every dependency (needs the package index)
lock: install
	$(UV) pip compile --quiet --python-version 3.11 requirements.in -o requirements.lock
	$(UV) pip compile --quiet --python-version 3.11 requirements-bench.in -o requirements-bench.lock

## docs: regenerate docs/data-contract.md from pipelines/contract.py
docs: install
	$(BIN)/python -m pipelines.docs

## benchmarks: speed, memory and accuracy on generated and real data (figures in docs/)
bench-extract: install
	$(BIN)/python benchmarks/extract.py --rows 10000000
bench-validate: install
	$(BIN)/python benchmarks/validate.py
bench-forecast: bench-install
	$(BIN)/python -m benchmarks.forecast --dataset all --sample 3000 --out var/bench_forecast.json
bench-policy: install
	$(BIN)/python benchmarks/policy.py
bench-policy-real: install
	$(BIN)/python benchmarks/policy_spare_parts.py
bench-transfers: install
	$(BIN)/python benchmarks/transfers.py
bench-replay: install
	flock /tmp/tiaobo-heavy.lock $(BIN)/python benchmarks/replay.py --dataset all
bench-load: install
	$(BIN)/python benchmarks/load.py --rows 1000000 --repeat 2
bench-night: install
	flock /tmp/tiaobo-heavy.lock $(BIN)/python benchmarks/night.py
	flock /tmp/tiaobo-heavy.lock $(BIN)/python benchmarks/night.py --tasks --shards 10
bench-workbench: install
	$(BIN)/python benchmarks/workbench.py --rows 100000 --repeat 20

## screenshots: docs/img/workbench-*.png, digest-zh-*.png and report-zh-*.png (desktop and 390 px) in a real browser, after `make demo`
screenshots: install browser
	$(BIN)/python scripts/screenshots.py

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
