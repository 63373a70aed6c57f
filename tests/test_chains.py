"""relay-path as a best-path search, and the causal check of its answers (chain fidelity).

Oracles: networkx's enumeration of every simple path for the k best paths, plain forward hooks on
the model for the accuracy a closed chain costs, and the composite ground truth (one specialist per
class) for what a faithful chain is."""

import copy

import networkx as nx
import numpy as np
import pytest
import torch
from helpers import python_relay_paths
from specialists import SPECIALISTS

from neurocypher.ingest import analyze, write
from neurocypher.ingest.closing import class_accuracies, closing_of, predict_chains, predict_closed
from neurocypher.ingest.demo import trained
from neurocypher.ingest.fidelity import measure_chains, top_chain
from neurocypher.ingest.neuronize import ClassScores
from neurocypher.queries.chains import FAITHFUL_RATIO
from neurocypher.queries.paths import Link, best_paths


def brute_force_paths(sources: dict, target, links, k):
    graph = nx.DiGraph()
    for link in links:
        graph.add_edge(link.source, link.target, gain=link.gain, tie=link.tie)
    found = []
    for source, start in sources.items():
        if source in graph and target in graph:
            for path in nx.all_simple_paths(graph, source, target):
                edges = list(zip(path, path[1:]))
                found.append(
                    (
                        start + sum(graph.edges[e]["gain"] for e in edges),
                        sum(graph.edges[e]["tie"] for e in edges),
                        path,
                    )
                )
    return sorted(found, key=lambda f: (-f[0], -f[1]))[:k]


@pytest.mark.parametrize("seed", range(6))
def test_best_paths_are_the_k_best_of_every_path(seed):
    """Random layered DAGs with skips, repeated gains (ties on the score), negative gains and start scores."""
    rng = np.random.default_rng(seed)
    layers = [list(range(layer * 10, layer * 10 + rng.integers(1, 5))) for layer in range(6)]
    links = [
        Link(u, v, float(rng.integers(-3, 4)), float(rng.random()))
        for lower in range(5)
        for upper in range(lower + 1, min(lower + 3, 6))
        for u in layers[lower]
        for v in layers[upper]
        if rng.random() < 0.6
    ]
    target = layers[-1][0]
    sources = {node: float(rng.integers(-2, 3)) for node in layers[0]}
    for k in (1, 3, 10, 50):
        found = best_paths(sources, target, links, lambda node: node // 10, k)
        expected = brute_force_paths(sources, target, links, k)
        assert [p.score for p in found] == pytest.approx([score for score, _, _ in expected])
        assert [p.tie for p in found] == pytest.approx([tie for _, tie, _ in expected])
        gain = {(link.source, link.target): link.gain for link in links}
        for p in found:  # each a real path from a source, with the score it claims
            assert p.nodes[0] in layers[0] and p.nodes[-1] == target
            assert sources[p.nodes[0]] + sum(gain[e] for e in zip(p.nodes, p.nodes[1:])) == pytest.approx(p.score)


def test_best_paths_without_a_path_is_empty():
    assert best_paths({0: 0.0}, 9, [Link(0, 1, 1.0), Link(2, 9, 1.0)], lambda n: n, 5) == []


def hooked_class_drops(model: torch.nn.Sequential, X, y, closed: dict[int, np.ndarray], n_classes):
    """Per-class accuracy lost with the units `closed[i]` of the output of model[i] set to their mean
    over X (mean ablation, the default closing)."""
    x = torch.from_numpy(X)
    means, handles = {}, []
    for index in closed:
        handles.append(
            model[index].register_forward_hook(lambda m, i, out, index=index: means.update({index: out.mean(0)}))
        )
    with torch.no_grad():
        base = model(x).argmax(1).numpy()
    for h in handles:
        h.remove()
    handles = []
    for index, members in closed.items():

        def close(module, inputs, output, members=torch.as_tensor(members), mean=means[index]):
            output = output.clone()
            output[:, members] = mean[members]
            return output

        handles.append(model[index].register_forward_hook(close))
    try:
        with torch.no_grad():
            predicted = model(x).argmax(1).numpy()
    finally:
        for h in handles:
            h.remove()
    return class_accuracies(base, y, n_classes)[1] - class_accuracies(predicted, y, n_classes)[1]


@pytest.fixture(scope="module")
def mlp(digits, home):
    model, _ = trained("digits-mlp", home / "demo")
    return model, analyze(model, digits.X, digits.y, name="chains-mlp", **digits.analyze_kwargs)


def test_chain_fidelity_equals_closing_the_chain_with_forward_hooks(mlp, digits):
    """The stored drops of every method's top chain for every class, against setting its hidden
    communities' members to their mean after each ReLU of the trained demo MLP."""
    model, a = mlp
    relu = {1: 1, 2: 3}  # layer L1 is read after model[1] (relu1), L2 after model[3] (relu2)
    for method in a.methods:
        for k in range(a.n_classes):
            chain = top_chain(a, method, k)
            measured = chain[-1].props
            closed = {relu[c.layer]: c.members for c in chain[1:-1]}
            drops = hooked_class_drops(model, digits.X, digits.y, closed, a.n_classes)
            assert measured["chain"] == [a.community_uid(c) for c in chain]
            assert measured["chain_drop"] == pytest.approx(drops[k], abs=1e-12), (method, k)
            assert measured["chain_other_drop"] == pytest.approx(np.delete(drops, k).max(), abs=1e-12)
            assert measured["chain_specificity"] == pytest.approx(drops[k] / max(np.delete(drops, k).max(), 0.005))


def test_chains_closed_together_predict_as_each_closed_alone(mlp, digits):
    """predict_chains runs many chains on copies of a batch; each must equal its own closing."""
    model, a = mlp
    scores = ClassScores(model, "")
    rng = np.random.default_rng(0)
    chains = [
        [closing_of(a.layers[layer], rng.choice(32, size, replace=False), to_mean) for layer in (1, 2)]
        for size, to_mean in ((1, False), (5, True), (12, False), (32, True))
    ]
    together = predict_chains(scores, digits.X, chains, batch_size=100)
    for chain, predicted in zip(chains, together):
        assert (predicted == predict_closed(scores, digits.X, chain, batch_size=100)).all()


def test_trained_mlp_chains_ranked_by_closing_beat_chains_ranked_by_relay_bits(mlp, digits):
    """On the demo MLP (nobody planted its answer) the default method's top chains, ranked by the
    closing score, are specific for more classes than those ranked by the paper's relay bits (7
    against 2 of 10, bench/chains.py) and beat random chains of the same sizes for most classes."""
    model, a = mlp
    closing = a.metrics
    relay = measure_chains(ClassScores(model, ""), digits.X, copy.deepcopy(a), score="relay")
    assert closing["chain_specificity_innersight"] >= relay["chain_specificity_innersight"] + 0.3
    assert closing["chain_vs_random_innersight"] >= 0.8


def test_relay_path_is_the_best_of_every_chain_on_a_trained_model(mlp, store):
    """The stored demo MLP, every method, class and score: relay-path's top 5 have the scores of the
    top 5 of every chain enumerated by networkx, and each is one of the enumerated chains at least as
    good as the fifth (chains whose scores tie within rounding may come in either order)."""
    _, a = mlp
    write(store, a, replace=True)
    for method in a.methods:
        for k in range(a.n_classes):
            for score in ("closing", "relay"):
                rows = store.ask("relay-path", model=a.name, method=method, score=score, **{"class": k})
                every = python_relay_paths(a, k, method, score=f"{score}_specificity")
                assert [r["score"] for r in rows] == pytest.approx([s for s, _ in every[:5]]), (method, k, score)
                good = {tuple(path): s for s, path in every if s >= every[min(4, len(every) - 1)][0] - 1e-9}
                assert all(good.get(tuple(r["chain"])) == pytest.approx(r["score"]) for r in rows)


def output_community(a, method, k):
    """Where the analysis stores the fidelity of `method`'s top chain for class k."""
    return next(c for c in a.communities if c.method == method and c.layer == len(a.layers) - 1 and c.index == k)


def test_relay_path_returns_the_measured_fidelity_of_its_top_chain_only(store, stored):
    a, _ = stored
    for method in a.methods:
        for k in range(SPECIALISTS):
            rows = store.ask("relay-path", model="q-spec", method=method, **{"class": k}, limit=3)
            measured = next(
                c for c in a.communities if c.method == method and c.layer == len(a.layers) - 1 and c.index == k
            )
            assert rows[0]["chain"] == measured.props["chain"]
            assert rows[0]["drop_class"] == pytest.approx(measured.props["chain_drop"])
            assert rows[0]["vs_random"] == pytest.approx(measured.props["chain_vs_random"])
            assert all(r["drop_class"] is None for r in rows[1:])
        relay_ranked = store.ask("relay-path", model="q-spec", method=method, score="relay", **{"class": 0})
        assert all(r["drop_class"] is None or r["chain"] == rows[0]["chain"] for r in relay_ranked)


def test_specialist_chains_are_faithful_on_the_composite(stored):
    """On the composite ground truth, closing class k's specialist chain costs class k and spares the
    other classes, for the weights and flow methods, whose chains follow the specialists. (Against
    chance it is no test here: a specialist is a third of each 18-unit layer, so random chains of its
    size close most of it too, and class k's chain beats them only about 1.1x.)"""
    a, _ = stored
    for method in ("weights", "flow"):
        for k in range(SPECIALISTS):
            out = output_community(a, method, k)
            assert out.props["chain_drop"] > 0.5, (method, k)
            assert out.props["chain_specificity"] >= FAITHFUL_RATIO, (method, k, out.props["chain_other_drop"])
