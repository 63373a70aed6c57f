"""Write a synthetic model of 100k neurons and 1M flow edges through the real writer into a fresh
embedded store, against the naive per-edge endpoint lookup
`UNWIND $rows MATCH (a {uid}) MATCH (b {uid}) CREATE (a)-[...]->(b)` in the same run (on a sample
of 100k edges, into the same graph).

    .venv/bin/python bench/ingest.py [--neo4j]

With --neo4j it writes to Neo4j instead: the server of NEO4J_URI, or a fresh Neo4j 5 test server
(tests/neo4j, `make neo4j-server`) with docker-compose.yml's settings, so the model is written
within its transaction memory (dbms.memory.transaction.total.max 1500m), then replaced and
dropped. There the writer itself matches each edge's ends, by (generation, uid) through the
constraint's index; the naive text, by uid alone, has no index to use and is not run.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).parents[1] / "tests"))  # after the packages: tests/ has a models.py
from neo4j_server import bench_store  # noqa: E402  (the store measured: embedded, or Neo4j)

LAYERS, WIDTH, EDGES, NAIVE_EDGES, SAMPLES = 10, 10_000, 1_000_000, 100_000, 16
NAIVE = (
    "UNWIND $rows AS row MATCH (a:Neuron {uid: row.a}) MATCH (b:Neuron {uid: row.b}) "
    "CREATE (a)-[:FLOWS_TO {bits: row.bits, share: row.share}]->(b)"
)


def naive_rate(store, analysis) -> float:
    """Relationships per second of the naive text, on the first NAIVE_EDGES flow edges."""
    flow = analysis.flows[0]
    rows = [
        {"a": f"bench-ingest/L0/{i}", "b": f"bench-ingest/L1/{j}", "bits": b, "share": s}
        for i, j, b, s in zip(
            flow.source[:NAIVE_EDGES].tolist(),
            flow.target[:NAIVE_EDGES].tolist(),
            flow.bits[:NAIVE_EDGES].tolist(),
            flow.share[:NAIVE_EDGES].tolist(),
        )
    ]
    started = time.perf_counter()
    for start in range(0, len(rows), 10_000):
        store.write(NAIVE, {"rows": rows[start : start + 10_000]}, model="bench-ingest")
    return len(rows) / (time.perf_counter() - started)


def seconds(run) -> float:
    started = time.perf_counter()
    run()
    return time.perf_counter() - started


def main(neo4j: bool) -> None:
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import write
    from neurocypher.queries.neo4j_store import BATCH_ROWS

    analysis = synthetic_analysis("bench-ingest", layers=LAYERS, width=WIDTH, edges=EDGES, samples=SAMPLES)
    with bench_store(neo4j) as (store, _):
        started = time.perf_counter()
        counts = write(store, analysis)
        ours_s = time.perf_counter() - started
        rels = sum(v for k, v in counts.items() if k.isupper())
        stored = store.console("MATCH (:Neuron)-[f:FLOWS_TO]->() RETURN count(f) AS n", model="bench-ingest")[0]["n"]
        assert stored == counts["FLOWS_TO"] >= EDGES
        rate = rels / ours_s
        flows = counts["FLOWS_TO"]
        said = f"writer: {counts['Neuron']} neurons, {rels} relationships ({flows} FLOWS_TO) in {ours_s:.1f} s"
        if store.backend == "neo4j":
            replace_s = seconds(lambda: write(store, analysis, replace=True))
            drop_s = seconds(lambda: store.drop("bench-ingest"))
            print(
                f"{said}, {BATCH_ROWS:,} rows a transaction; replaced in {replace_s:.0f} s, dropped in {drop_s:.0f} s"
            )
            print(f"ingest: backend=neo4j rels_per_s={rate:,.0f} replace_s={replace_s:.1f} drop_s={drop_s:.1f}")
            return
        naive = naive_rate(store, analysis)
    print(f"{said}, atomic (staging graph + RENAME); naive: {naive:,.0f} relationships/s")
    print(f"ingest: ratio={rate / naive:.1f} rels_per_s={rate:,.0f} naive_rels_per_s={naive:,.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neo4j", action="store_true", help="write to Neo4j (NEO4J_URI, or a fresh test server)")
    main(parser.parse_args().neo4j)
