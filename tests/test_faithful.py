"""Faithful answers on networks whose answer is known: composite networks with one one-vs-rest
specialist for every digit (2-4 units each, block-diagonal after the input), analysed with every
method, stored, and asked through the query library (bench/groundtruth.py prints the full table)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from neurocypher.ingest import AnalysisOptions, analyze, write
from neurocypher.ingest.groundtruth import composite
from neurocypher.queries import connect

WIDTHS = (2, 3, 4)


@pytest.fixture(scope="module")
def tanh_composite(digits):
    truth = composite(digits.X, digits.y, widths=WIDTHS, activation="tanh", shuffle=True)
    a = analyze(truth.model, digits.X, digits.y, name="faithful-tanh", deletion=False, weight_coupled=True)
    with connect() as store:
        write(store, a, replace=True)
    return truth, a


@pytest.fixture(scope="module")
def capped_relay(tanh_composite, digits):
    """The relay method on the same network with joint states exact up to N / 32 and merged beyond."""
    truth, _ = tanh_composite
    options = AnalysisOptions(methods=("relay",), deletion=False).with_method_option("relay.samples_per_state=32")
    a = analyze(truth.model, digits.X, digits.y, name="faithful-tanh-capped", options=options)
    with connect() as store:
        write(store, a, replace=True)
    return truth, a


def labels_of(a, method, layer):
    labels = np.full(a.layers[layer].width, -1)
    for c in a.communities:
        if c.method == method and c.layer == layer:
            labels[c.members] = c.index
    return labels


def test_partitions_recover_the_specialists(tanh_composite):
    truth, a = tanh_composite
    for layer, blocks in enumerate(truth.blocks, start=1):
        assert adjusted_rand_score(blocks, labels_of(a, "weights", layer)) >= 0.95
        assert adjusted_rand_score(blocks, labels_of(a, "flow", layer)) >= 0.9  # --weight-coupled
    # innersight: where the units' class profiles separate the specialists (the last hidden layer)
    assert adjusted_rand_score(truth.blocks[-1], labels_of(a, "innersight", 2)) >= 0.9


def test_core_neurons_of_each_class_lie_in_its_specialist(tanh_composite):
    truth, a = tanh_composite
    for layer, blocks in enumerate(truth.blocks, start=1):
        core = a.layers[layer].props["core"]  # width x classes
        inside = np.concatenate([blocks[np.flatnonzero(core[:, k])] == k for k in range(10)])
        assert inside.mean() >= 0.9


@pytest.mark.parametrize("method", ["innersight", "flow", "weights"])
def test_relay_path_runs_through_each_class_specialist_to_its_own_output(tanh_composite, store, method):
    truth, a = tanh_composite
    members = {a.community_uid(c): set(c.members.tolist()) for c in a.communities}
    for k in range(10):
        (top,) = store.ask("relay-path", model=a.name, method=method, limit=1, **{"class": k})
        assert top["chain"][-1] == f"{a.name}/{method}/L3/c{k}"
        for uid, blocks in zip(top["chain"][1:-1], truth.blocks):
            specialist = set(np.flatnonzero(blocks == k).tolist())
            assert len(members[uid] & specialist) / len(members[uid] | specialist) >= 0.5, (k, uid)


def test_relay_modules_recover_the_specialists(capped_relay):
    """Joint states exact up to N / 32 = 56 (the measured Jaccards: docs/groundtruth.md, first column)."""
    truth, a = capped_relay
    for layer, blocks, least in zip((1, 2), truth.blocks, (0.6, 0.85)):
        modules = [c for c in a.communities if c.method == "relay" and c.layer == layer]
        specialist = [set(np.flatnonzero(blocks == c.props["class"]).tolist()) for c in modules]
        jaccard = [
            len(set(c.members.tolist()) & s) / len(set(c.members.tolist()) | s) for c, s in zip(modules, specialist)
        ]
        assert np.mean(jaccard) >= least


def test_neurflow_keeps_a_circuit_of_one_core_set_whole(tanh_composite):
    """A class's circuit at a layer is its specialist (2-4 units, at most core_size(16, 29) = 8): one group."""
    truth, a = tanh_composite
    for layer, blocks in enumerate(truth.blocks, start=1):
        groups = [c for c in a.communities if c.method == "neurflow" and c.layer == layer]
        assert sorted(g.props["class"] for g in groups) == list(range(10))
        for g in groups:
            assert g.members.tolist() == np.flatnonzero(blocks == g.props["class"]).tolist()


@pytest.mark.parametrize("method", ["relay", "neurflow"])
def test_relay_path_of_class_made_communities_follows_the_specialists(tanh_composite, capped_relay, store, method):
    """relay with states capped, and neurflow (the measured hits: docs/groundtruth.md, first column)."""
    truth, a = capped_relay if method == "relay" else tanh_composite
    members = {a.community_uid(c): set(c.members.tolist()) for c in a.communities}
    hits = 0
    for k in range(10):
        chains = store.ask("relay-path", model=a.name, method=method, limit=1, **{"class": k})
        if chains:
            specialists = [set(np.flatnonzero(blocks == k).tolist()) for blocks in truth.blocks]
            hidden = [
                len(members[uid] & s) / len(members[uid] | s) for uid, s in zip(chains[0]["chain"][1:-1], specialists)
            ]
            hits += min(hidden) >= 0.5 and chains[0]["chain"][-1].endswith(f"/c{k}")
    assert hits >= {"relay": 8, "neurflow": 10}[method]


@pytest.mark.parametrize("method", ["relay", "neurflow"])
def test_class_made_communities_chain_only_for_their_class(tanh_composite, store, method):
    _, a = tanh_composite
    made_for = {a.community_uid(c): c.props.get("class") for c in a.communities if c.method == method}
    answered = 0
    for k in range(10):
        chains = store.ask("relay-path", model=a.name, method=method, limit=20, **{"class": k})
        answered += bool(chains)  # a module missing its specialist has no flow to the class's output
        for chain in chains:
            assert chain["chain"][-1] == f"{a.name}/{method}/L3/c{k}"
            assert all(made_for[uid] in (None, k) for uid in chain["chain"])
    assert answered >= 3


def test_key_communities_for_one_class(tanh_composite, store):
    _, a = tanh_composite
    rows = store.ask("key-communities", model=a.name, method="weights", limit=100, **{"class": 4})
    drops = {a.community_uid(c): c.props["class_acc_drop"][4] for c in a.communities if c.method == "weights"}
    assert rows and [r["community"] for r in rows] == sorted(
        (uid for uid, d in drops.items() if d > 0.005), key=lambda uid: (-drops[uid], uid)
    )
