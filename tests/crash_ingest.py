"""The write step of `neurocypher ingest` in a process of its own, for tests/test_reliability.py: it
stores a pickled ModelGraph in the store of $NEUROCYPHER_HOME and can be stopped part way.

    python tests/crash_ingest.py GRAPH.pkl POINT

POINT: `none`; `kill:F`, SIGKILL itself once the relationship batch at fraction F of them is sent
(0: the first, 1: the last); `kill:publish`, SIGKILL itself once the indexes are built, right before
the RENAME; `pause`, print `paused` once the first relationship batch is sent and go on when a line
arrives on stdin. The patches live in this process only.
"""

import os
import pickle
import signal
import sys

from queries import UserError, bulk, connect, falkordb_store

BLOB_BYTES = 16 * 2**10  # small GRAPH.BULK calls, so that a few thousand relationships take many


def after_relationship_batch(at: float, then) -> None:
    """Call `then()` once the relationship batch at fraction `at` of them has been sent."""
    calls = falkordb_store.bulk_calls

    def stopping_calls(graph):
        batches = list(calls(graph))
        rels = [i for i, (args, _) in enumerate(batches) if args[-4]]  # args[-4]: relationships in the call
        last = rels[round(at * (len(rels) - 1))]
        for i, batch in enumerate(batches):
            yield batch  # write_model sends it before asking for the next one
            if i == last:
                then()

    falkordb_store.bulk_calls = stopping_calls


def before_publish(then) -> None:
    """Call `then()` once the staging graph's indexes are built, right before the RENAME."""
    wait = falkordb_store.FalkorStore._wait_for_indexes

    def waiting(self, key, *args):
        wait(self, key, *args)
        then()

    falkordb_store.FalkorStore._wait_for_indexes = waiting


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def pause() -> None:
    print("paused", flush=True)
    sys.stdin.readline()


def main(path: str, point: str) -> None:
    bulk.BLOB_BYTES = BLOB_BYTES
    if point == "kill:publish":
        before_publish(die)
    elif point.startswith("kill:"):
        after_relationship_batch(float(point[5:]), die)
    elif point == "pause":
        after_relationship_batch(0, pause)
    with open(path, "rb") as handle:
        graph = pickle.load(handle)
    try:
        with connect() as store:
            store.write_model(graph)
    except UserError as exc:  # as the CLI reports it
        sys.exit(f"error: {exc}")


if __name__ == "__main__":
    main(*sys.argv[1:])
