"""Flow-graph communities at scale: Leiden (leidenalg, what `flow` uses) against networkx's Louvain
on the same synthetic layered flow graph of 100k neurons and 1M weighted edges, in the same run.

    .venv/bin/python bench/communities.py
"""

import time

import networkx as nx
import numpy as np

from neurocypher.ingest.methods.flow import leiden_labels

LAYERS, WIDTH, EDGES = 10, 10_000, 1_000_000


def main() -> None:
    rng = np.random.default_rng(0)
    per_pair = EDGES // (LAYERS - 1)
    lower = rng.integers(0, LAYERS - 1, EDGES)
    # edges mostly stay inside one of 20 planted groups of neurons, so there is structure to find
    group = rng.integers(0, 20, EDGES)
    inside = rng.random(EDGES) < 0.8
    source = lower * WIDTH + np.where(inside, group * 500 + rng.integers(0, 500, EDGES), rng.integers(0, WIDTH, EDGES))
    target = (lower + 1) * WIDTH + np.where(
        inside, group * 500 + rng.integers(0, 500, EDGES), rng.integers(0, WIDTH, EDGES)
    )
    bits = rng.random(EDGES)
    n = LAYERS * WIDTH

    started = time.perf_counter()
    labels = leiden_labels(source, target, bits, n)
    leiden_s = time.perf_counter() - started

    graph = nx.Graph()
    graph.add_nodes_from(range(n))
    graph.add_weighted_edges_from(zip(source.tolist(), target.tolist(), bits.tolist()))
    started = time.perf_counter()
    louvain = nx.community.louvain_communities(graph, weight="weight", seed=0)
    louvain_s = time.perf_counter() - started
    print(
        f"{n} neurons, {EDGES} edges ({per_pair} per layer pair): Leiden {leiden_s:.1f} s, "
        f"{len(set(labels))} communities; networkx Louvain {louvain_s:.1f} s, {len(louvain)} communities"
    )
    print(f"communities: ratio={louvain_s / leiden_s:.1f} leiden_s={leiden_s:.1f} networkx_louvain_s={louvain_s:.1f}")


if __name__ == "__main__":
    main()
