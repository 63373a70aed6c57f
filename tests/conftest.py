"""Every test runs against a real embedded FalkorDB server in a temporary NEUROCYPHER_HOME."""

import os
import shutil
import tempfile
from pathlib import Path

import pytest
from helpers import NEO4J_URI, SENT_CYPHER

from ingest import analyze, write
from queries import EmbeddedServer, connect
from queries.falkordb_store import FalkorStore


def pytest_collection_modifyitems(items):
    """`after_all` tests run last (the linter sees every statement sent before it); `neo4j` tests
    need NEO4J_URI."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)
    if not NEO4J_URI:
        for item in items:
            if item.get_closest_marker("neo4j"):
                item.add_marker(pytest.mark.skip(reason="needs a Neo4j 5 server: set NEO4J_URI"))


@pytest.fixture(scope="session", autouse=True)
def home():
    """A fresh data directory with a running embedded server for the whole session."""
    path = Path(tempfile.mkdtemp(prefix="nc-", dir="/tmp"))
    saved = {key: os.environ.pop(key, None) for key in ("NEO4J_URI", "NEUROCYPHER_HOME")}
    os.environ["NEUROCYPHER_HOME"] = str(path)
    server = EmbeddedServer(path)
    server.start()
    yield path
    server.stop()
    for key, value in saved.items():
        if value is not None:
            os.environ[key] = value
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session", autouse=True)
def record_cypher():
    """Remember the text of every statement that ran through the FalkorDB backend."""
    query = FalkorStore._query

    def recording_query(self, key, cypher, params, read_only, timeout=None):
        rows = query(self, key, cypher, params, read_only, timeout)
        SENT_CYPHER.add(cypher)  # once it ran: the tests' deliberately broken or refused Cypher is not ours
        return rows

    FalkorStore._query = recording_query
    yield
    FalkorStore._query = query


@pytest.fixture()
def store():
    with connect() as s:
        yield s


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, as `neurocypher` loads them."""
    from ingest.data import load_data

    return load_data("sklearn:digits")


@pytest.fixture(scope="session")
def specialists():
    """The per-class specialists network (see tests/specialists.py)."""
    from specialists import build

    return build()


@pytest.fixture(scope="session")
def stored(specialists):
    """Two specialists models (seeds 0 and 1), analysed and stored as q-spec and q-spec2."""
    from specialists import CLASS_NAMES, build

    analyses = [
        analyze(s.model, s.X, s.y, name=name, class_names=CLASS_NAMES, image_shape=(8, 8))
        for name, s in (("q-spec", specialists), ("q-spec2", build(seed=1)))
    ]
    with connect() as store:
        for analysis in analyses:
            write(store, analysis, replace=True)
    return analyses
