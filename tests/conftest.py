"""Every test runs against a real embedded FalkorDB server in a temporary NEUROCYPHER_HOME; the
tests of a module marked `both_backends` that use the store run on it and again on a real Neo4j 5
server (tests/neo4j_server.py), as do the tests marked `neo4j`."""

import os
import shutil
import tempfile
from pathlib import Path

import neo4j_server
import pytest
from helpers import SENT_CYPHER, store_missing

from neurocypher.ingest import analyze
from neurocypher.queries import EmbeddedServer, connect
from neurocypher.queries.falkordb_store import FalkorStore

BACKENDS = [pytest.param("falkordb"), pytest.param("neo4j", marks=pytest.mark.neo4j)]
NEO4J: dict[str, neo4j_server.Neo4jServer] = {}  # the session's Neo4j test server, once started


def pytest_generate_tests(metafunc):
    """A test that uses the store (the `backend` fixture) runs on each backend when marked
    `both_backends`, on Neo4j only when marked `neo4j`."""
    if "backend" not in metafunc.fixturenames:
        return
    if metafunc.definition.get_closest_marker("both_backends"):
        metafunc.parametrize("backend", BACKENDS, indirect=True)
    elif metafunc.definition.get_closest_marker("neo4j"):
        metafunc.parametrize("backend", BACKENDS[1:], indirect=True)


def pytest_collection_modifyitems(items):
    """`after_all` tests run last (the linter sees every statement sent before it). `neo4j` tests
    run against the server in NEO4J_URI, or else the Neo4j test server, started here in the
    background while the tests before them run; without either, they are skipped saying why."""
    items.sort(key=lambda item: item.get_closest_marker("after_all") is not None)
    wanted = [item for item in items if item.get_closest_marker("neo4j")]
    why = neo4j_server.unavailable()
    for item in wanted if why else []:
        item.add_marker(pytest.mark.skip(reason=why))
    if wanted and not why and not neo4j_server.GIVEN and not NEO4J:
        NEO4J["server"] = neo4j_server.Neo4jServer()


def pytest_unconfigure():
    if NEO4J:
        NEO4J.pop("server").stop()


@pytest.fixture(scope="session")
def neo4j_env() -> dict[str, str]:
    """The NEO4J_* variables of the session's Neo4j server, once it answers."""
    return neo4j_server.GIVEN or NEO4J["server"].wait()


@pytest.fixture()
def backend(request, monkeypatch) -> str:
    """The test's backend: FalkorDB, or where the test is parametrised so, Neo4j, which `connect()`
    and the console script then use (the NEO4J_* variables are set for the test)."""
    name = getattr(request, "param", "falkordb")
    if name == "neo4j":
        for key, value in request.getfixturevalue("neo4j_env").items():
            monkeypatch.setenv(key, value)
    return name


@pytest.fixture(scope="session", autouse=True)
def home():
    """A fresh data directory with a running embedded server for the whole session."""
    path = Path(tempfile.mkdtemp(prefix="nc-", dir="/tmp"))
    saved = {key: os.environ.pop(key, None) for key in (*neo4j_server.ENVIRONMENT, "NEUROCYPHER_HOME")}
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
def store(backend):
    with connect() as s:
        yield s


@pytest.fixture(scope="session")
def digits():
    """scikit-learn's digits, as `neurocypher` loads them."""
    from neurocypher.ingest.data import load_data

    return load_data("sklearn:digits")


@pytest.fixture(scope="session")
def specialists():
    """The per-class specialists network (see tests/specialists.py)."""
    from specialists import build

    return build()


@pytest.fixture(scope="session")
def specialist_analyses(specialists):
    """Two specialists models (seeds 0 and 1), analysed as q-spec and q-spec2."""
    from specialists import CLASS_NAMES, build

    return [
        analyze(s.model, s.X, s.y, name=name, class_names=CLASS_NAMES, image_shape=(8, 8))
        for name, s in (("q-spec", specialists), ("q-spec2", build(seed=1)))
    ]


@pytest.fixture()
def stored(store, specialist_analyses):
    """q-spec and q-spec2, stored in the test's store (by the first test of each backend that asks)."""
    store_missing(store, specialist_analyses)
    return specialist_analyses
