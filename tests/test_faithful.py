"""Faithful answers on networks whose answer is known: composite networks with one one-vs-rest
specialist for every digit (2-4 units each, block-diagonal after the input), analysed with every
method, stored, and asked through the query library (bench/groundtruth.py prints the full table)."""

import numpy as np
import pytest
from sklearn.metrics import adjusted_rand_score

from ingest import analyze, write
from ingest.groundtruth import composite
from queries import connect

WIDTHS = (2, 3, 4)


@pytest.fixture(scope="module")
def tanh_composite(digits):
    truth = composite(digits.X, digits.y, widths=WIDTHS, activation="tanh", shuffle=True)
    a = analyze(truth.model, digits.X, digits.y, name="faithful-tanh", deletion=False, weight_coupled=True)
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
