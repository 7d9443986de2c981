# Two entry points for a fresh machine (see README):
#   make demo  - the whole pipeline on a generated world with a real Kafka broker
#   make test  - lint, type checks, architecture contracts and the test suite (real broker included)
PY      ?= python3.11
VENV    ?= .venv
BIN     := $(VENV)/bin
STAMP   := $(VENV)/.installed

.PHONY: install lock demo test lint typecheck archcheck pytest bench clean

$(STAMP): pyproject.toml requirements-dev.lock tests/node/package-lock.json examples/consumers/go/go.sum
	@command -v $(PY) >/dev/null || { echo "need $(PY) on PATH"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -r requirements-dev.lock  # the whole tree pinned (`make lock` writes it)
	$(BIN)/pip install -q --no-deps -e .
	$(BIN)/python -m tools broker fetch  # the development CLI (tools/cli.py), not shipped
	cd tests/node && npm ci --no-audit --no-fund  # Ajv, Redocly CLI, kafkajs, pinned by package-lock.json
	@command -v go >/dev/null || { echo "need go (>= 1.21) on PATH for the Go consumer example"; exit 1; }
	cd examples/consumers/go && go mod download  # franz-go, pinned by go.sum; the tests build offline
	command -v promtool >/dev/null || { apt-get update -q && apt-get install -y -q prometheus; }
	command -v chromedriver >/dev/null || { apt-get update -q && apt-get install -y -q chromium chromium-driver; }
	touch $(STAMP)

install: $(STAMP)

# Re-pin the whole tree after a change of pyproject.toml's dependencies. uv keeps every pin already in a
# lock file that still satisfies pyproject.toml; `make lock UPGRADE=--upgrade` moves them all.
lock:
	$(BIN)/uv pip compile pyproject.toml --python-version 3.11 --custom-compile-command "make lock" \
		$(UPGRADE) -q -o requirements.lock
	$(BIN)/uv pip compile pyproject.toml --extra dev --extra spark --python-version 3.11 \
		--custom-compile-command "make lock" $(UPGRADE) -q -o requirements-dev.lock

demo: $(STAMP)
	$(BIN)/python -m tools demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .  # one formatter, no per-line opt-outs

typecheck: $(STAMP)
	$(BIN)/mypy contracts linkage integration services tools synthetic

archcheck: $(STAMP)
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

test: lint typecheck archcheck pytest

clean:
	rm -rf .run
