"""The write step of `neurocypher ingest` in a process of its own, for tests/test_reliability.py and
tests/test_neo4j.py: it stores a pickled ModelGraph in the store that `connect()` gives (the
embedded one of $NEUROCYPHER_HOME, or Neo4j with NEO4J_URI set), and can be stopped part way.

    python tests/crash_ingest.py GRAPH.pkl POINT [--replace]

POINT: `none`; `kill:F`, SIGKILL itself once the relationship batch at fraction F of them is sent
(0: the first, 1: the last); `kill:publish`, SIGKILL itself right before publishing (once the
indexes are built, before the RENAME; before Neo4j's status flip); `pause`, print `paused` once the
first relationship batch is sent and go on when a line arrives on stdin; `kill:drop`, drop the
model instead, and SIGKILL itself once the first batch of it is deleted (Neo4j). The patches
live in this process only, and make the batches small, so that a few thousand relationships take many.
"""

import os
import pickle
import signal
import sys

from neurocypher.config import settings
from neurocypher.errors import UserError
from neurocypher.queries import bulk, connect, falkordb_store, neo4j_store

BLOB_BYTES = 16 * 2**10  # FalkorDB: bytes per GRAPH.BULK call
ROWS = 500  # Neo4j: rows per write transaction


def stopping(batches, is_relationships, at: float, then):
    """`batches`, calling `then()` once the relationship batch at fraction `at` of them has been sent
    (the writer sends a batch before asking for the next one)."""
    batches = list(batches)
    rels = [i for i, batch in enumerate(batches) if is_relationships(batch)]
    last = rels[round(at * (len(rels) - 1))]
    for i, batch in enumerate(batches):
        yield batch
        if i == last:
            then()


def after_relationship_batch(at: float, then) -> None:
    """Call `then()` once the relationship batch at fraction `at` of them has been sent."""
    if settings().backend == "neo4j":
        batches = neo4j_store.neo4j_batches
        neo4j_store.neo4j_batches = lambda graph: stopping(
            batches(graph, ROWS), lambda batch: "CREATE (a)-[" in batch[0], at, then
        )
    else:
        calls = falkordb_store.bulk_calls  # args[-4] of a call: the relationships in it
        falkordb_store.bulk_calls = lambda graph: stopping(calls(graph), lambda call: call[0][-4], at, then)


def before_publish(then) -> None:
    """Call `then()` right before the written graph is published."""
    if settings().backend == "neo4j":
        publish = neo4j_store._publish

        def publishing(*args):
            then()
            return publish(*args)

        neo4j_store._publish = publishing
    else:
        wait = falkordb_store.FalkorStore._wait_for_indexes

        def waiting(self, key, *args):
            wait(self, key, *args)
            then()

        falkordb_store.FalkorStore._wait_for_indexes = waiting


def after_first_deletion(then) -> None:
    """Call `then()` once a drop on Neo4j has deleted its first batch (of relationships)."""
    neo4j_store.BATCH_ROWS = ROWS
    write = neo4j_store.Neo4jStore.write

    def deleting(self, cypher, params=None, *, model):
        rows = write(self, cypher, params, model=model)
        if "DELETE" in cypher and rows[0]["deleted"]:
            then()
        return rows

    neo4j_store.Neo4jStore.write = deleting


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def pause() -> None:
    print("paused", flush=True)
    sys.stdin.readline()


def main(path: str, point: str, *flags: str) -> None:
    bulk.BLOB_BYTES = BLOB_BYTES
    if point == "kill:publish":
        before_publish(die)
    elif point == "kill:drop":
        after_first_deletion(die)
    elif point.startswith("kill:"):
        after_relationship_batch(float(point[5:]), die)
    elif point == "pause":
        after_relationship_batch(0, pause)
    with open(path, "rb") as handle:
        graph = pickle.load(handle)
    try:
        with connect() as store:
            if point == "kill:drop":
                store.drop(graph.model_id)
            else:
                store.write_model(graph, replace="--replace" in flags)
    except UserError as exc:  # as the CLI reports it
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main(*sys.argv[1:])
