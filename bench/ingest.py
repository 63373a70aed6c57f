"""Write a synthetic model of 100k neurons and 1M flow edges through the real writer into a fresh
embedded store, against the naive per-edge endpoint lookup
`UNWIND $rows MATCH (a {uid}) MATCH (b {uid}) CREATE (a)-[...]->(b)` in the same run (on a sample
of 100k edges, into the same graph).

    .venv/bin/python -P bench/ingest.py   (-P: bench/ must not shadow the packages)
"""

import time

import numpy as np

LAYERS, WIDTH, EDGES, NAIVE_EDGES, SAMPLES = 10, 10_000, 1_000_000, 100_000, 16
NAIVE = ("UNWIND $rows AS row MATCH (a:Neuron {uid: row.a}) MATCH (b:Neuron {uid: row.b}) "
         "CREATE (a)-[:FLOWS_TO {bits: row.bits, share: row.share}]->(b)")


def synthetic_analysis(rng):
    from ingest.analysis import Analysis, Layer
    from ingest.flow import Flow

    labels = rng.integers(0, 10, SAMPLES)
    layers = []
    for index in range(LAYERS):
        acts = rng.random((SAMPLES, WIDTH), dtype=np.float32)
        layers.append(Layer(index=index, name=f"layer{index}", module=f"layer{index}", tap="", tap_call=0, kind="linear",
                            activation="ReLU", acts=acts, codes=np.zeros((SAMPLES, WIDTH), np.uint8),
                            entropy=rng.random(WIDTH), class_means=rng.random((10, WIDTH))))
    per_pair = EDGES // (LAYERS - 1) + 1
    flows = [Flow(lower=l, source=rng.integers(0, WIDTH, per_pair), target=rng.integers(0, WIDTH, per_pair),
                  bits=rng.random(per_pair), share=rng.random(per_pair), threshold=0.01, shape=(WIDTH, WIDTH))
             for l in range(LAYERS - 1)]
    return Analysis(name="bench-ingest", arch="synthetic", dataset="random", class_names=[str(c) for c in range(10)],
                    labels=labels, predictions=labels, layers=layers, flows=flows)


def main() -> None:
    from ingest.writer import write
    from queries import scratch_store

    rng = np.random.default_rng(0)
    analysis = synthetic_analysis(rng)
    with scratch_store() as store:
        started = time.perf_counter()
        counts = write(store, analysis)
        ours_s = time.perf_counter() - started
        rels = sum(v for k, v in counts.items() if k.isupper())
        stored = store.read("MATCH ()-[f:FLOWS_TO]->() RETURN count(f) AS n", model="bench-ingest")[0]["n"]
        assert stored == counts["FLOWS_TO"] >= EDGES

        flow = analysis.flows[0]
        rows = [{"a": f"bench-ingest/L0/{i}", "b": f"bench-ingest/L1/{j}", "bits": b, "share": s}
                for i, j, b, s in zip(flow.source[:NAIVE_EDGES].tolist(), flow.target[:NAIVE_EDGES].tolist(),
                                      flow.bits[:NAIVE_EDGES].tolist(), flow.share[:NAIVE_EDGES].tolist())]
        started = time.perf_counter()
        for start in range(0, len(rows), 10_000):
            store.write(NAIVE, {"rows": rows[start:start + 10_000]}, model="bench-ingest")
        naive_rate = len(rows) / (time.perf_counter() - started)
    rate = rels / ours_s
    print(f"writer: {counts['Neuron']} neurons, {rels} relationships ({counts['FLOWS_TO']} FLOWS_TO) "
          f"in {ours_s:.1f} s, atomic (staging graph + RENAME); naive: {naive_rate:,.0f} relationships/s")
    print(f"ingest: ratio={rate / naive_rate:.1f} rels_per_s={rate:,.0f} naive_rels_per_s={naive_rate:,.0f}")


if __name__ == "__main__":
    main()
