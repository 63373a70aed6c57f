"""relay-path and flow-between at any depth, on synthetic stored models, against the Cypher that
spelled out one MATCH per hop for every path length of the layer DAG (the library's text before it
became a best-path search), in the same run:

- `wide`: 10 layers of 1,000 neurons, 1M flow edges, 4 communities per layer (the earlier benchmark);
- `skips`: 16 layers of 200 neurons with a skip every 4 layers, 4 communities per layer;
- `deep`: a 200-layer DAG with a skip every 4 layers, 50 communities per layer (100 neurons);
- `bert`: a BERT-base-shaped DAG, 100 layers of 768 neurons with a residual skip every 2 layers
  (attention and feed-forward outputs merged with the stream), 30 communities per layer.

For each: relay-path's median time (score=relay and min_bits=0.1, the earlier query's ranking, so
both answer the same question; and asked with its defaults, every link read), the spelled-out
text's where its chains are few enough to finish
(2 of a layer's communities pass min_bits for a class, so it enumerates about 2^hops chains per path
length: run up to SPELLED_OUT_HOPS), whether the top 5 agree, flow-between's median over 2 hops, and
the server's resident memory before and after.

    .venv/bin/python bench/query.py [--neo4j]

With --neo4j the models are stored in Neo4j instead: the server of NEO4J_URI, or a fresh Neo4j 5
test server (tests/neo4j, `make neo4j-server`) with docker-compose.yml's settings; the server's
memory is the JVM's resident set (heap, page cache and the rest), and the models are dropped at the end.
"""

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.append(str(Path(__file__).parents[1] / "tests"))  # after the packages: tests/ has a models.py
from neo4j_server import bench_store  # noqa: E402  (the store measured: embedded, or Neo4j)

TIMEOUT_S = 20
RUNS = 9
SPELLED_OUT_HOPS = 16
MODELS = {  # name: synthetic_analysis arguments
    "wide": dict(layers=10, width=1000, edges=1_000_000, communities=4),
    "skips": dict(layers=16, width=200, edges=100_000, communities=4, skip=4),
    "deep": dict(layers=200, width=100, edges=100_000, communities=50, skip=4),
    "bert": dict(layers=100, width=768, edges=300_000, communities=30, skip=2),
}
ASK = {"class": 3, "min_bits": 0.1, "score": "relay", "method": "innersight"}


def spelled_out(hops: int) -> str:
    """The earlier library's relay-path text for chains of `hops` links: one MATCH per hop."""
    from neurocypher.queries.schema import on_complete_model

    bits = [f"c{i}.relay_bits[$class]" for i in range(hops + 1)]
    lines = ["MATCH (c0:Community {generation: m.generation, method: $method, layer: 0})\n"]
    for i in range(1, hops):
        lines.append(
            f"MATCH (c{i - 1})-[f{i}:FLOWS_TO]->(c{i}:Community) WHERE c{i}.layer < m.n_layers - 1 "
            f"AND (c{i}.class IS NULL OR c{i}.class = $class) AND {bits[i]} >= $min_bits\n"
        )
    lines.append(
        f"MATCH (c{hops - 1})-[f{hops}:FLOWS_TO]->(c{hops}:Community) "
        f"WHERE c{hops}.layer = m.n_layers - 1 AND c{hops}.class = $class\n"
    )
    score = " + ".join(f"c{i}.relay_specificity[$class]" for i in range(1, hops)) or "0.0"
    flow = " + ".join(f"f{i}.mean" for i in range(1, hops + 1))
    chain = ", ".join(f"c{i}.uid" for i in range(hops + 1))
    return on_complete_model(
        "".join(lines) + f"RETURN [{chain}] AS chain, {score} AS score, {flow} AS flow\n"
        "ORDER BY score DESC, flow DESC LIMIT $limit"
    )


def hop_counts(feeds: list[tuple[int, int]], last: int) -> set[int]:
    """The lengths of the layer DAG's paths from the input to the last layer."""
    lengths: dict[int, set[int]] = {0: {0}}
    for a, b in sorted(feeds, key=lambda edge: edge[1]):
        if a in lengths:
            lengths.setdefault(b, set()).update(n + 1 for n in lengths[a])
    return lengths[last]


def median_ms(run) -> float:
    times = []
    for _ in range(RUNS):
        started = time.perf_counter()
        run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def resident_gib(pid: int | None) -> str:
    """The server's resident memory in GiB, or n/a for a server elsewhere."""
    if pid is None:
        return "n/a"
    with open(f"/proc/{pid}/status") as status:
        kib = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
    return f"{kib / 2**20:.2f}"


def spelled_out_answer(store, a, name: str) -> tuple[str, list | None]:
    """The spelled-out texts' merged top 5 and their time, or why they did not finish."""
    params = {"model": name, **ASK, "limit": 5}
    hops = sorted(hop_counts(a.feeds, len(a.layers) - 1))
    if hops[-1] > SPELLED_OUT_HOPS:
        return f"not run: {len(hops)} texts of up to {hops[-1]} hops", None
    texts = [spelled_out(h) for h in hops]
    started = time.perf_counter()
    try:
        rows = [row for text in texts for row in store.read(text, params, model=name, timeout=TIMEOUT_S)]
    except Exception as exc:  # stopped at the timeout, or refused by the server's limits
        return f"did not finish ({len(texts)} texts; {str(exc).splitlines()[0][:80]})", None
    rows.sort(key=lambda row: (-row["score"], -row["flow"]))
    return f"{(time.perf_counter() - started) * 1000:.0f} ms", [row["chain"] for row in rows[:5]]


def main(neo4j: bool) -> None:
    from neurocypher.ingest.synthetic import synthetic_analysis
    from neurocypher.ingest.writer import write

    print(f"{'model':<6} {'layers':>6} {'links':>8}  relay-path  defaults    spelled-out text             "
          "top 5 agree  flow-between  server GiB before/after")  # fmt: skip
    worst = 0.0
    with bench_store(neo4j) as (store, pid):
        for name, shape in MODELS.items():
            a = synthetic_analysis(name, **shape)
            write(store, a)
            before = resident_gib(pid)
            ask = {"model": name, **ASK}
            relay = median_ms(lambda ask=ask: store.ask("relay-path", **ask))
            worst = max(worst, relay)
            top = [row["chain"] for row in store.ask("relay-path", **ask)]
            default = median_ms(lambda name=name: store.ask("relay-path", model=name, **{"class": 3}))
            baseline, spelled = spelled_out_answer(store, a, name)
            ends = {"source": f"{name}/L0/1", "target": f"{name}/L2/2"}
            between = median_ms(lambda ends=ends, name=name: store.ask("flow-between", model=name, **ends))
            links = sum(len(f.source) for f in a.community_flows)
            agree = "n/a" if spelled is None else str(spelled == top)
            print(
                f"{name:<6} {len(a.layers):>6} {links:>8}  {relay:>7.1f} ms  {default:>7.1f} ms  {baseline:<28} "
                f"{agree:<12} {between:>8.1f} ms   {before} / {resident_gib(pid)}"
            )
        if store.backend == "neo4j":  # one database holds every model
            for name in MODELS:
                store.drop(name)
    print(f"query: backend={store.backend} relay_path_worst_median_ms={worst:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neo4j", action="store_true", help="store the models in Neo4j (NEO4J_URI, or a test server)")
    main(parser.parse_args().neo4j)
