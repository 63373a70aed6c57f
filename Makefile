# The two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test app bench clean

demo: $(INSTALLED)
	$(BIN)/neurocypher demo

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

app: $(INSTALLED)
	$(BIN)/neurocypher app

# -P keeps bench/ off sys.path, so bench/ingest.py does not shadow the ingest package.
bench: $(INSTALLED)
	for b in bench/*.py; do $(BIN)/python -P $$b || exit 1; done

# torch first and pinned: the cached CPU wheel, instead of a newest build with GBs of CUDA packages.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info
