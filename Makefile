VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: install run migrate lint format test bench clean sdk

$(STAMP): pyproject.toml constraints.txt clients/python/setup.py clients/cli/pyproject.toml
	python3 -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -c constraints.txt -e '.[dev]' -e clients/python -e clients/cli
	touch $(STAMP)

# Tools whose pins clash with ours live in venvs of their own, each pinned whole in
# constraints-NAME.txt: checkov (the manifests' security scan in tests/deploy) pins packages older
# than ours (boto3, networkx, packaging); the bench's llm-compressor peer requires torch<=2.14.0
# and transformers<=5.17 (we pin 2.14.1 and 5.24; bench/llmcompressor_peer.py). Only make bench
# needs the second.
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
LLMC_STAMP := .venv-llmcompressor/.installed

.venv-%/.installed: constraints-%.txt
	python3 -m venv .venv-$*
	.venv-$*/bin/pip install --quiet -r $<
	touch $@

install: $(STAMP) $(CHECKOV_STAMP)

run: $(STAMP)
	$(VENV)/bin/modelpress run

migrate: $(STAMP)
	$(VENV)/bin/modelpress migrate

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy app workers compressor
	$(VENV)/bin/lint-imports

format: $(STAMP)
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# Two processes: the suite mostly waits on servers, workers and jobs, so two overlap on two
# cores. Tests sharing a live stack stay in one process (tests/fixtures/parallel.py).
PYTEST_PROCESSES ?= 2  # 0: one process, no xdist

test: $(STAMP) $(CHECKOV_STAMP) lint
	MODELPRESS_CHECKOV="$(abspath $(CHECKOV_VENV))/bin/checkov" $(VENV)/bin/pytest -n $(PYTEST_PROCESSES) --dist loadfile $(PYTEST_ARGS)

bench: $(STAMP) $(LLMC_STAMP)
	$(PY) -m bench.run

# The SDK is generated from the app object's document: no server, no database.
sdk: $(STAMP)
	$(PY) scripts/dump_openapi.py clients/openapi.json
	PATH="$(abspath $(VENV))/bin:$$PATH" $(VENV)/bin/openapi-python-client generate \
		--path clients/openapi.json --config clients/openapi-python-client.yaml \
		--meta setup --output-path clients/python --overwrite

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
