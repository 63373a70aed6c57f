"""Write a synthetic model of 100k neurons and 1M flow edges through the real writer into a fresh
embedded store, against the naive per-edge endpoint lookup
`UNWIND $rows MATCH (a {uid}) MATCH (b {uid}) CREATE (a)-[...]->(b)` in the same run (on a sample
of 100k edges, into the same graph).

    .venv/bin/python -P bench/ingest.py   (-P: bench/ must not shadow the packages)
"""

import time

LAYERS, WIDTH, EDGES, NAIVE_EDGES, SAMPLES = 10, 10_000, 1_000_000, 100_000, 16
NAIVE = (
    "UNWIND $rows AS row MATCH (a:Neuron {uid: row.a}) MATCH (b:Neuron {uid: row.b}) "
    "CREATE (a)-[:FLOWS_TO {bits: row.bits, share: row.share}]->(b)"
)


def main() -> None:
    from ingest.synthetic import synthetic_analysis
    from ingest.writer import write
    from queries import scratch_store

    analysis = synthetic_analysis("bench-ingest", layers=LAYERS, width=WIDTH, edges=EDGES, samples=SAMPLES)
    with scratch_store() as store:
        started = time.perf_counter()
        counts = write(store, analysis)
        ours_s = time.perf_counter() - started
        rels = sum(v for k, v in counts.items() if k.isupper())
        stored = store.read("MATCH ()-[f:FLOWS_TO]->() RETURN count(f) AS n", model="bench-ingest")[0]["n"]
        assert stored == counts["FLOWS_TO"] >= EDGES

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
        naive_rate = len(rows) / (time.perf_counter() - started)
    rate = rels / ours_s
    print(
        f"writer: {counts['Neuron']} neurons, {rels} relationships ({counts['FLOWS_TO']} FLOWS_TO) "
        f"in {ours_s:.1f} s, atomic (staging graph + RENAME); naive: {naive_rate:,.0f} relationships/s"
    )
    print(f"ingest: ratio={rate / naive_rate:.1f} rels_per_s={rate:,.0f} naive_rels_per_s={naive_rate:,.0f}")


if __name__ == "__main__":
    main()
