# The two set-up commands: `make demo` and `make test`. Both create .venv and install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
NEO4J_SERVER := tests/neo4j/target/neo4j-test-server.jar
export DEBIAN_FRONTEND := noninteractive

.PHONY: demo test app bench clean neo4j-server

demo: $(INSTALLED)
	$(BIN)/neurocypher demo

test: $(INSTALLED) $(CHROMIUM) $(NEO4J_SERVER)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

app: $(INSTALLED)
	$(BIN)/neurocypher app

# About 40 minutes in all: bench/resnet.py (ResNet-18, every method) 20, bench/memory.py (2048-wide MLP) 3,
# bench/scale.py 5.
bench: $(INSTALLED)
	for b in bench/*.py; do $(BIN)/python $$b || exit 1; done

# torch first and pinned: the cached CPU wheel, instead of a newest build with GBs of CUDA packages.
$(INSTALLED): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

# The Neo4j 5 Community server the tests run against (tests/neo4j): Maven downloads it into ~/.m2 on
# the first build, later builds run offline. Without Java or Maven the tests go on and those on Neo4j
# are skipped, saying why; with both, a failed build fails (the end of tests/neo4j/build.log is shown).
neo4j-server: $(NEO4J_SERVER)

$(NEO4J_SERVER): tests/neo4j/pom.xml $(shell find tests/neo4j/src -name '*.java')
	@if ! command -v java >/dev/null || ! command -v mvn >/dev/null; then \
		echo "no java or mvn on PATH: the tests on Neo4j will be skipped"; \
	else \
		cd tests/neo4j && { mvn -B -q -o package >build.log 2>&1 || mvn -B -q package >build.log 2>&1; } \
		|| { tail -n 30 build.log; echo "the Neo4j test server did not build: see tests/neo4j/build.log"; exit 1; }; \
	fi

# Debian's chromium for the browser test (Playwright drives it; it never downloads a browser).
$(CHROMIUM):
	$(SUDO) apt-get install -y -q chromium || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q chromium)

clean:
	rm -rf $(VENV) *.egg-info tests/neo4j/target
