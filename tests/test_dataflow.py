"""The layer DAG follows the model's dataflow: functional activations, residual skips and merges,
transformers (batch- and sequence-first), RNNs, tuple and dict outputs, classes without samples;
stored as (:Layer)-[:FEEDS]->(:Layer), with flow only along it, and every named query answers."""

import numpy as np
import pytest
import torch
import zoo
from helpers import cli, snapshot

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.groundtruth import residual
from neurocypher.queries.library import QUERIES, ask

SAMPLES = 300


@pytest.fixture(scope="module")
def data(digits):
    """300 digits as 64 features, and as 8 t(rows) of 8 features."""
    X, y = digits.X[:SAMPLES], digits.y[:SAMPLES]
    return X, X.reshape(-1, 8, 8), y


def trained(factory, X, y, *args, pick=lambda out: out):
    return zoo.train(factory(*args), X, y, steps=60, logits=pick)


def stored_feeds(store, name) -> list[tuple[int, int]]:
    rows = store.read(
        "MATCH (a:Layer {model_id: $m})-[:FEEDS]->(b:Layer) RETURN a.index AS a, b.index AS b ORDER BY b, a",
        {"m": name},
        model=name,
    )
    return [(r["a"], r["b"]) for r in rows]


def flow_layer_pairs(store, name) -> set[tuple[int, int]]:
    rows = store.read(
        "MATCH (a:Neuron {model_id: $m})-[:FLOWS_TO]->(b:Neuron) RETURN DISTINCT a.layer AS a, b.layer AS b",
        {"m": name},
        model=name,
    )
    return {(r["a"], r["b"]) for r in rows}


def ask_everything(store, a) -> dict[str, int]:
    """Every named query on stored analysis `a` (each method for the per-method ones): rows per query."""
    first = next(c for c in a.communities if c.method == a.methods[0])
    given = {
        "model": a.name,
        "models": [a.name],
        "class": 1,
        "uid": a.community_uid(first),
        "source": a.uid(0, 0),
        "target": a.uid(len(a.layers) - 1, 1),
    }
    rows = {}
    for name, query in QUERIES.items():
        params = {p.name: given[p.name] for p in query.params if p.name in given}
        for method in a.methods if "method" in {p.name for p in query.params} else [None]:
            found = ask(store, name, **params, **({"method": method} if method else {}))
            rows[f"{name} {method or ''}".strip()] = len(found)
    return rows


def test_functional_activations_are_read_after(data):
    X, _, y = data
    model = trained(zoo.functional_mlp, X, y)
    a = analyze(model, X, y, name="z-functional", methods=("flow",), deletion=False)
    assert [(lay.name, lay.activation, lay.inputs) for lay in a.layers[1:-1]] == [
        ("fc1", "relu", (0,)),
        ("fc2", "relu", (1,)),  # Tensor.relu
        ("fc3", "gelu", (2,)),
    ]
    assert a.layers[1].acts.min() >= 0 and a.layers[2].acts.min() >= 0 and a.layers[3].acts.min() >= -0.2
    with torch.no_grad():
        fc1 = torch.relu(model.fc1(torch.from_numpy(X))).numpy()
    np.testing.assert_allclose(a.layers[1].acts, fc1, atol=1e-6)


RESNET_LAYERS = [
    ("conv", "conv", "ReLU"),
    ("block1.conv1", "conv", "relu"),
    ("block1.conv2", "conv", ""),  # read after its BatchNorm, before the add
    ("block1.add", "merge", "relu"),
    ("block2.conv1", "conv", "relu"),
    ("block2.shortcut.0", "conv", ""),
    ("block2.conv2", "conv", ""),
    ("block2.add", "merge", "relu"),
]
RESNET_FEEDS = [(0, 1), (1, 2), (2, 3), (1, 4), (3, 4), (4, 5), (4, 6), (5, 7), (6, 8), (7, 8), (8, 9)]


@pytest.fixture(scope="module")
def resnets(data):
    """The ResNet analysed as written, and its layers again with each shortcut computed first (same weights)."""
    X, _, y = data
    model = trained(zoo.resnet, X, y)
    reordered = zoo.resnet(shortcut_first=True)
    reordered.load_state_dict(model.state_dict())
    return analyze(model, X, y, name="z-resnet"), analyze(
        reordered.eval(), X, y, name="z-sf", methods=(), deletion=False
    )


def test_resnet_dag_follows_skips_and_merges(store, resnets, data):
    a, reordered = resnets
    assert [(lay.name, lay.kind, lay.activation) for lay in a.layers[1:-1]] == RESNET_LAYERS
    assert a.feeds == RESNET_FEEDS
    assert a.layers[3].point.name == "block1.bn2" and a.layers[6].point.name == "block2.shortcut.1"
    for lay in a.layers[1:-1]:
        if lay.activation:
            assert lay.acts.min() >= 0, lay.name
    # the order of statements in forward changes nothing
    assert reordered.feeds == a.feeds and [lay.name for lay in reordered.layers] == [lay.name for lay in a.layers]
    for mine, theirs in zip(a.layers, reordered.layers):
        np.testing.assert_allclose(mine.acts, theirs.acts, atol=1e-5)
    write(store, a, replace=True)
    assert stored_feeds(store, a.name) == RESNET_FEEDS
    assert flow_layer_pairs(store, a.name) <= set(RESNET_FEEDS) and (1, 4) in flow_layer_pairs(store, a.name)
    rows = ask_everything(store, a)
    assert all(rows[f"relay-path {m}"] > 0 for m in a.methods), rows
    chain = ask(store, "relay-path", model=a.name, method="flow", **{"class": 3})[0]
    assert chain["layers"][0] == 0 and chain["layers"][-1] == 9
    assert all((lower, upper) in RESNET_FEEDS for lower, upper in zip(chain["layers"], chain["layers"][1:]))


TRANSFORMER_LAYERS = [
    ("embed", "linear", (0,), 0),
    ("encoder.self_attn", "attention", (1,), 1),
    ("encoder.add", "merge", (1, 2), 1),  # read after norm1
    ("encoder.linear1", "linear", (3,), 1),  # after the functional relu
    ("encoder.linear2", "linear", (4,), 1),
    ("encoder.add#1", "merge", (3, 5), 1),
]


def test_transformer_tokens_batch_first_and_sequence_first(store, data):
    _, X, y = data
    first = trained(zoo.transformer, X, y, True)
    second = zoo.transformer(False)
    second.load_state_dict(first.state_dict())
    found = [
        analyze(m.eval(), X, y, name=f"z-transformer-{i}", methods=("flow",)) for i, m in enumerate((first, second))
    ]
    for a, batch_first in zip(found, (True, False)):
        assert [(lay.name, lay.kind, lay.inputs) for lay in a.layers[1:-1]] == [t[:3] for t in TRANSFORMER_LAYERS]
        axes = [lay.layout.batch_axis for lay in a.layers[1:-1]]
        assert axes == ([0] * 6 if batch_first else [t[3] for t in TRANSFORMER_LAYERS])
        assert [lay.width for lay in a.layers] == [64, 16, 16, 16, 32, 16, 16, 10]  # features, never tokens
    for mine, theirs in zip(*[a.layers for a in found]):
        np.testing.assert_allclose(mine.acts, theirs.acts, atol=1e-4)
    a = found[0]
    with torch.no_grad():
        embedded = first.embed(torch.from_numpy(X)).mean(dim=1).numpy()
    np.testing.assert_allclose(a.layers[1].acts, embedded, atol=1e-5)  # the mean over tokens
    assert a.layers[4].acts.min() >= 0 and a.layers[4].activation == "relu"
    write(store, a, replace=True)
    assert stored_feeds(store, a.name) == a.feeds and flow_layer_pairs(store, a.name) <= set(a.feeds)
    assert ask_everything(store, a)["relay-path flow"] > 0


def test_named_token_layer_has_one_neuron_per_feature(data):
    _, X, y = data
    a = analyze(trained(zoo.transformer, X, y), X, y, name="z-norm", layers=("encoder.norm1",), methods=())
    assert [(lay.name, lay.width, lay.inputs) for lay in a.layers] == [
        ("input", 64, ()),
        ("encoder.norm1", 16, (0,)),
        ("output", 10, (1,)),
    ]


@pytest.mark.parametrize("factory", [zoo.lstm, zoo.gru])
def test_recurrent_hidden_units_are_neurons(store, data, factory):
    _, X, y = data
    model = trained(factory, X, y)
    a = analyze(model, X, y, name=f"z-{factory.__name__}")
    assert [(lay.name, lay.kind, lay.width, lay.inputs, lay.layout.reduce) for lay in a.layers[1:]] == [
        ("rnn", "recurrent", 24, (0,), "last"),
        ("output", "output", 10, (1,), ""),
    ]
    with torch.no_grad():
        last = model.rnn(torch.from_numpy(X))[0][:, -1].numpy()
    np.testing.assert_allclose(a.layers[1].acts, last, atol=1e-5)
    write(store, a, replace=True)
    assert all(n > 0 for key, n in ask_everything(store, a).items() if key.startswith("relay-path"))


@pytest.mark.parametrize(("factory", "logits"), [(zoo.tuple_output, "0"), (zoo.dict_output, "logits")])
def test_tuple_and_dict_outputs_take_logits(data, factory, logits):
    X, _, y = data
    key = int(logits) if logits.isdigit() else logits
    model = trained(factory, X, y, pick=lambda out: out[key])
    if isinstance(key, int):
        with pytest.raises(UserError, match="--logits INDEX"):
            analyze(model, X, y, name="z-out", methods=())
    else:  # a dict with an item `logits` (as a Hugging Face ModelOutput) is read there unasked, and says so
        assert analyze(model, X, y, name="z-out", methods=()).notes["logits"] == "logits"
    a = analyze(model, X, y, name="z-out", methods=("flow",), logits=logits)
    assert [lay.name for lay in a.layers] == ["input", "fc1", "output"] and a.accuracy > 0.8
    with pytest.raises(UserError, match="--logits 5: the model's output has no item"):
        analyze(model, X, y, name="z-out", methods=(), logits="5")


def test_classes_without_samples_are_reported(store, data):
    X, _, y = data
    keep = y < 2
    model = trained(zoo.three_classes, X[keep], y[keep])
    a = analyze(model, X[keep], y[keep], name="z-three")
    assert a.notes["classes_without_samples"] == [2] and a.n_classes == 3
    write(store, a, replace=True)
    rows = ask_everything(store, a)
    assert rows["relay-path flow"] > 0


def test_residual_ground_truth_relays_along_the_skip(store, digits):
    """The class carried by the skip alone is answered along the skip, through its own units."""
    truth = residual(digits.X, digits.y, skip_class=3)
    assert truth.accuracy.min() > 0.95
    a = analyze(
        truth.model,
        truth.X,
        truth.y,
        name="z-residual",
        methods=("innersight", "flow"),
        weight_coupled=True,
        deletion=False,
    )
    assert a.feeds == [(0, 1), (1, 2), (2, 3), (1, 4), (3, 4), (4, 5)]
    write(store, a, replace=True)
    members = {a.community_uid(c): set(c.members.tolist()) for c in a.communities}
    skip = set(np.flatnonzero(truth.blocks == 3).tolist())
    for method in a.methods:
        top = ask(store, "relay-path", model=a.name, method=method, **{"class": 3})[0]
        assert top["layers"] == [0, 1, 4, 5], (method, top)
        assert all(len(members[u] & skip) / len(members[u] | skip) >= 0.5 for u in top["chain"][1:-1]), top


def test_cli_prints_the_dag_and_refuses_outputs_without_logits(store, tmp_path, data):
    flat, rows, y = data
    np.savez(tmp_path / "flat.npz", X=flat, y=y)
    np.savez(tmp_path / "rows.npz", X=rows, y=y)
    before = snapshot(store)
    refused = cli(
        "ingest", "--model", "tests/zoo.py:tuple_output", "--data", str(tmp_path / "flat.npz"), "--name", "z-cli"
    )
    assert refused.returncode == 2 and refused.stderr.count("\n") == 1 and "--logits INDEX|KEY" in refused.stderr
    assert snapshot(store) == before
    done = cli(
        "ingest",
        "--model",
        "tests/zoo.py:lstm",
        "--data",
        str(tmp_path / "rows.npz"),
        "--name",
        "z-cli-lstm",
        "--methods",
        "flow",
    )
    assert done.returncode == 0, done.stderr
    assert "L1 rnn: recurrent 24, at rnn, last step; fed by L0" in done.stdout
