# The two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed

.PHONY: demo test app clean

demo: $(INSTALLED)
	$(BIN)/neurocypher demo

test: $(INSTALLED)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

app: $(INSTALLED)
	$(BIN)/neurocypher app

# torch first and pinned: the cached CPU wheel, instead of a newest build with GBs of CUDA packages.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

clean:
	rm -rf $(VENV) *.egg-info
