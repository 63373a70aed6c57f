"""The store side, everything about the graph database: `connect()` returns the configured store."""

import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path

from neurocypher.config import settings

from .falkordb_store import FalkorStore
from .neo4j_store import Neo4jStore
from .server import EmbeddedServer
from .store import Store

__all__ = ["connect", "scratch_store", "EmbeddedServer", "Store"]


def connect(announce=lambda message: print(message, file=sys.stderr)) -> Store:
    """The store from the environment: Neo4j when NEO4J_URI is set, else the embedded FalkorDB,
    which is started (and `announce`d) when it is not running."""
    config = settings()
    if config.neo4j_uri:
        return Neo4jStore(config.neo4j_uri, config.neo4j_user, config.neo4j_password, config.neo4j_database)
    server = EmbeddedServer(config.home)
    if server.start():
        announce(f"started the embedded FalkorDB server in {server.dir} (pid {server.pid()})")
    return FalkorStore(server)


@contextmanager
def scratch_store():
    """A store on a fresh embedded server in a temporary directory (benchmarks, experiments); the
    server is stopped and the directory removed afterwards."""
    home = Path(tempfile.mkdtemp(prefix="nc-scratch-", dir="/tmp"))
    server = EmbeddedServer(home)
    server.start()
    try:
        with FalkorStore(server) as store:
            yield store
    finally:
        server.stop()
        shutil.rmtree(home, ignore_errors=True)
