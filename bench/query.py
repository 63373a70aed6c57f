"""Named queries on a synthetic stored model of 10k neurons (10 layers of 1,000) and 1M flow edges
with 4 communities per layer (1,024 relay chains pass for the class asked): `relay-path` and `flow-between`
(one explicit hop per layer) against
the same questions written as unbounded variable-length paths with a path filter, in the same run.

    .venv/bin/python -P bench/query.py
"""

import statistics
import time

LAYERS, WIDTH, EDGES, COMMUNITIES, CLASSES, RUNS = 10, 1000, 1_000_000, 4, 10, 15
TIMEOUT_MS = 60_000
RELAY_PATH_UNBOUNDED = """
MATCH p = (c0:Community {method: 'innersight', layer: 0})-[:FLOWS_TO*]->
          (cl:Community {method: 'innersight', layer: $last})
WHERE all(c IN nodes(p) WHERE c.relay_bits[$class] >= $min_bits)
RETURN [c IN nodes(p) | c.uid] AS chain,
       reduce(s = 0.0, c IN nodes(p) | s + c.relay_bits[$class])
       + reduce(s = 0.0, r IN relationships(p) | s + r.mean) AS score
ORDER BY score DESC LIMIT 5"""
FLOW_BETWEEN_UNBOUNDED = """
MATCH p = (a:Neuron {uid: $source})-[:FLOWS_TO*]->(b:Neuron {uid: $target})
RETURN [n IN nodes(p) | n.uid] AS path, reduce(f = 1.0, r IN relationships(p) | f * r.share) AS flow
ORDER BY flow DESC LIMIT 5"""


def median_ms(run) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def main() -> None:
    from ingest.synthetic import synthetic_analysis
    from ingest.writer import write
    from queries import scratch_store

    # each class is relayed strongly by 2 of the 4 communities of every layer, so 2^10 chains pass min_bits = 0.1
    analysis = synthetic_analysis(
        "bench-query", layers=LAYERS, width=WIDTH, edges=EDGES, communities=COMMUNITIES, classes=CLASSES
    )
    with scratch_store() as store:
        write(store, analysis)
        graph = store._db.select_graph("neurocypher:bench-query")
        ask = {"model": "bench-query", "class": 3, "min_bits": 0.1}
        relay = median_ms(lambda: store.ask("relay-path", **ask))
        chains = len(store.ask("relay-path", **ask, limit=1000))
        relay_unbounded = median_ms(
            lambda: graph.ro_query(
                RELAY_PATH_UNBOUNDED, {"last": LAYERS - 1, "class": 3, "min_bits": 0.1}, timeout=TIMEOUT_MS
            )
        )
        ends = {"source": "bench-query/L0/1", "target": "bench-query/L2/2"}
        between = median_ms(lambda: store.ask("flow-between", model="bench-query", **ends))
        paths = len(store.ask("flow-between", model="bench-query", **ends, limit=1000))
        started = time.perf_counter()
        try:
            graph.ro_query(FLOW_BETWEEN_UNBOUNDED, ends, timeout=TIMEOUT_MS)
            between_unbounded = f"{(time.perf_counter() - started) * 1000:.0f} ms"
        except Exception as exc:  # the unbounded search does not finish
            between_unbounded = f"> {TIMEOUT_MS} ms ({str(exc).splitlines()[0]})"
    print(
        f"relay-path: {relay:.1f} ms median ({chains} chains pass min_bits), unbounded path + filter "
        f"{relay_unbounded:.1f} ms; flow-between over 2 hops: {between:.1f} ms ({paths} paths), "
        f"unbounded: {between_unbounded}"
    )
    print(f"query: ratio={relay_unbounded / relay:.1f} median_ms={relay:.1f} flow_between_ms={between:.1f}")


if __name__ == "__main__":
    main()
