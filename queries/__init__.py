"""Everything about the graph database: `connect()` returns the configured store."""

import sys

from .config import settings
from .errors import UserError
from .server import EmbeddedServer
from .store import FalkorStore, Neo4jStore, Store

__all__ = ["connect", "EmbeddedServer", "Store", "UserError", "settings"]


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
