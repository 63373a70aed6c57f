"""The command line end to end: demo, ingest, models, query, drop, and every bad input."""

import json

import numpy as np
import pytest
import torch

import models
from conftest import cli
from ingest import analyze, write
from ingest.demo_models import mlp
from queries import connect

MODELS = "tests/models.py"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Data and weight files, good and bad, for the `small` test model (4 features, 2 classes)."""
    d = tmp_path_factory.mktemp("inputs")
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 4)).astype(np.float32)
    y = (X[:, 0] > 0).astype(np.int64)
    paths = {}

    def npz(name, **arrays):
        paths[name] = d / f"{name}.npz"
        np.savez(paths[name], **arrays)

    npz("good", X=X, y=y, class_names=np.array(["neg", "pos"]))
    npz("mismatch", X=X, y=y[:-3])
    npz("float_labels", X=X, y=y + 0.5)
    npz("label_range", X=X, y=y * 5)
    npz("negative_label", X=X, y=y - 1)
    npz("nan", X=np.where(np.arange(160).reshape(40, 4) == 7, np.nan, X), y=y)
    npz("inf", X=np.where(np.arange(160).reshape(40, 4) == 9, np.inf, X), y=y)
    npz("empty", X=np.zeros((0, 4), np.float32), y=np.zeros(0, np.int64))
    npz("wide", X=rng.normal(size=(40, 7)).astype(np.float32), y=y)
    npz("no_y", X=X)
    paths["pt"] = d / "good.pt"
    torch.save({"X": torch.from_numpy(X), "y": torch.from_numpy(y)}, paths["pt"])
    paths["csv"] = d / "data.csv"
    paths["csv"].write_text("1,2,3\n")
    paths["bad_weights"] = d / "mlp.pt"
    torch.save(mlp().state_dict(), paths["bad_weights"])
    with connect() as store:  # a stored model for the query parameter cases
        write(store, analyze(models.small(), X, y, name="cli-stored"), replace=True)
    return paths


def stored_graphs(store):
    return sorted(store._db.list_graphs())


def ingest_args(files, name="cli-small", data="good", model="small", *extra):
    return ["ingest", "--model", f"{MODELS}:{model}", "--data", str(files.get(data, data)), "--name", name, *extra]


BAD_INPUTS = [
    # (id, args builder, expected message fragment)
    ("missing model file", lambda f: ["ingest", "--model", "nope.py:small", "--data", str(f["good"]), "--name", "x"],
     "model file nope.py not found"),
    ("model spec without factory", lambda f: ["ingest", "--model", MODELS, "--data", str(f["good"]), "--name", "x"],
     "is not FILE.py:FACTORY"),
    ("missing factory", lambda f: ingest_args(f, model="nothing_here"), "has no function 'nothing_here'"),
    ("factory returns no module", lambda f: ingest_args(f, model="not_a_module"), "returned a dict, not a torch.nn.Module"),
    ("factory raises", lambda f: ingest_args(f, model="broken"), "broken() in tests/models.py failed: cannot build"),
    ("weights do not fit", lambda f: ingest_args(f) + ["--weights", str(f["bad_weights"])], "do not fit the model"),
    ("weights missing", lambda f: ingest_args(f) + ["--weights", "absent.pt"], "weights file absent.pt not found"),
    ("data file missing", lambda f: ingest_args(f, data="absent.npz"), "data file absent.npz not found"),
    ("data of unknown type", lambda f: ingest_args(f, data="csv"), "unknown data file type '.csv'"),
    ("unknown built-in dataset", lambda f: ingest_args(f, data="sklearn:mnist"), "unknown built-in dataset 'mnist'"),
    ("data without y", lambda f: ingest_args(f, data="no_y"), "lacks y"),
    ("X/y length mismatch", lambda f: ingest_args(f, data="mismatch"), "X has 40 samples but y has 37 labels"),
    ("fractional labels", lambda f: ingest_args(f, data="float_labels"), "labels y must be integers"),
    ("label out of range", lambda f: ingest_args(f, data="label_range"), "labels must be integers in 0..1"),
    ("negative label", lambda f: ingest_args(f, data="negative_label"), "labels must be integers in 0..1"),
    ("NaN in X", lambda f: ingest_args(f, data="nan"), "X contains NaN or inf in 1 sample(s)"),
    ("inf in X", lambda f: ingest_args(f, data="inf"), "X contains NaN or inf in 1 sample(s)"),
    ("X shape rejected", lambda f: ingest_args(f, data="wide"), "the model rejects inputs of shape (7,)"),
    ("empty dataset", lambda f: ingest_args(f, data="empty"), "the dataset is empty"),
    ("model output not class scores", lambda f: ingest_args(f, model="tuple_output"), "one tensor of class scores"),
    ("bad model name", lambda f: ingest_args(f, name="bad name/../x"), "model name 'bad name/../x' is not allowed"),
    ("unknown layer name", lambda f: ingest_args(f) + ["--layers", "fc9"], "no module named fc9"),
    ("unknown community method", lambda f: ingest_args(f) + ["--methods", "flow,louvain"],
     "unknown community method louvain; choose from innersight, flow, weights, relay, neurflow"),
    ("bad relay option", lambda f: ingest_args(f) + ["--binarization", "mean"], "binarization kmeans or median"),
    ("write in the console", lambda f: ["query", "--cypher", "MATCH (n) DETACH DELETE n"], "refused: DETACH would change the store"),
    ("schema change in the console", lambda f: ["query", "--cypher", "CREATE INDEX FOR (n:Neuron) ON (n.x)"], "refused: CREATE"),
    ("drop of an unknown model", lambda f: ["drop", "never-stored"], "no model named 'never-stored' is stored"),
    ("unknown named query", lambda f: ["query", "relay-paths"], "no query named 'relay-paths'; the queries are: models,"),
    ("missing query parameter", lambda f: ["query", "top-relays", "--model", "x"], "top-relays needs parameter class"),
    ("query parameter of the wrong type", lambda f: ["query", "top-relays", "--model", "x", "--param", "class=three"],
     "parameter class must be int, got 'three'"),
    ("negative class", lambda f: ["query", "attribution", "--model", "x", "--param", "class=-1"],
     "parameter class must be between 0 and None, got -1"),
    ("huge limit", lambda f: ["query", "attribution", "--model", "x", "--param", "class=1", "--param", "limit=10000000"],
     "parameter limit must be between 1 and 1000"),
    ("unknown query parameter", lambda f: ["query", "models", "--param", "model=x"], "models takes no parameter model"),
    ("query name and --cypher", lambda f: ["query", "models", "--cypher", "RETURN 1"], "not both or neither"),
    ("relay-path of a missing model", lambda f: ["query", "relay-path", "--model", "nope", "--param", "class=1"],
     "no model named 'nope' is stored"),
    ("flow-between downwards", lambda f: ["query", "flow-between", "--model", "cli-stored", "--param",
                                          "source=cli-stored/L2/0", "--param", "target=cli-stored/L1/0"],
     "must be in a higher layer"),
    ("flow-between of a foreign neuron", lambda f: ["query", "flow-between", "--model", "cli-stored", "--param",
                                                    "source=other/L0/0", "--param", "target=cli-stored/L1/0"],
     "source 'other/L0/0' is not a neuron uid of model 'cli-stored'"),
    ("compare of one model", lambda f: ["compare", "only-one"], "compare needs at least two model ids"),
    ("class beyond the model's", lambda f: ["query", "top-relays", "--model", "cli-stored", "--param", "class=7"],
     "class 7 is not a class of cli-stored: use 0..1"),
]


@pytest.mark.parametrize("make_args, message", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(files, store, make_args, message):
    before = stored_graphs(store)
    done = cli(*make_args(files))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert stored_graphs(store) == before


def test_unreachable_neo4j_is_one_line_exit_2(files):
    for args in (ingest_args(files), ["models"], ["query", "--cypher", "RETURN 1 AS one"]):
        done = cli(*args, env={"NEO4J_URI": "bolt://127.0.0.1:9", "NEO4J_PASSWORD": "s3cret-value"})
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "cannot reach Neo4j at bolt://127.0.0.1:9" in done.stderr and "unset NEO4J_URI" in done.stderr
        assert "s3cret-value" not in done.stderr


def test_ingest_reingest_and_replace(files, store):
    first = cli(*ingest_args(files, "cli-small"))
    assert first.returncode == 0, first.stderr
    assert first.stdout.startswith("stored cli-small: ") and "11 neurons (input[4] -> 0[5] -> output[2])" in first.stdout
    count = "MATCH (n:Neuron) RETURN count(n) AS n"
    assert store.read(count, model="cli-small") == [{"n": 11}]
    created = store.read("MATCH (m:Model) RETURN m.created_at AS t", model="cli-small")

    again = cli(*ingest_args(files, "cli-small"))
    assert again.returncode == 2 and "already stored; pass --replace" in again.stderr
    assert store.read("MATCH (m:Model) RETURN m.created_at AS t", model="cli-small") == created

    replaced = cli(*ingest_args(files, "cli-small", "pt", "small", "--replace"))
    assert replaced.returncode == 0, replaced.stderr
    assert store.read(count, model="cli-small") == [{"n": 11}]
    classes = store.read("MATCH (:Model)-[:HAS_CLASS]->(c:Class) RETURN c.name AS name ORDER BY name", model="cli-small")
    assert classes == [{"name": "0"}, {"name": "1"}]  # the .pt file names no classes


def test_query_formats_and_models(files, store):
    assert cli(*ingest_args(files, "cli-formats", "good", "small", "--replace")).returncode == 0
    cypher = ["query", "--model", "cli-formats", "--cypher",
              "MATCH (c:Class) RETURN c.index AS i, c.name AS name ORDER BY i"]
    as_json = cli(*cypher, "--format", "json")
    assert json.loads(as_json.stdout) == [{"i": 0, "name": "neg"}, {"i": 1, "name": "pos"}]
    assert cli(*cypher, "--format", "csv").stdout == "i,name\n0,neg\n1,pos\n"
    params = cli("query", "--model", "cli-formats", "--param", "k=1", "--format", "json",
                 "--cypher", "MATCH (c:Class {index: $k}) RETURN c.name AS name")
    assert json.loads(params.stdout) == [{"name": "pos"}]
    listed = cli("models", "--format", "json")
    assert "cli-formats" in [m["model_id"] for m in json.loads(listed.stdout)]
    assert cli("drop", "cli-formats").returncode == 0 and not store.has_model("cli-formats")


def test_demo_stores_both_models_and_the_console_answers(store):
    done = cli("demo")
    assert done.returncode == 0, done.stderr
    assert "digits-mlp:" in done.stdout and "digits-cnn:" in done.stdout
    rows = store.read("MATCH (m:Model) RETURN m.model_id AS id, m.accuracy AS acc, m.n_neurons AS n")
    demo = {r["id"]: r for r in rows if r["id"].startswith("digits-")}
    assert demo["digits-mlp"]["n"] == 64 + 32 + 32 + 10 and demo["digits-cnn"]["n"] == 64 + 8 + 16 + 64 + 10
    assert min(r["acc"] for r in demo.values()) > 0.9
    answer = cli("query", "--model", "digits-mlp", "--format", "json",
                 "--cypher", "MATCH (n:Neuron) RETURN count(n) AS n")
    assert json.loads(answer.stdout) == [{"n": 138}]
    hidden = store.read("MATCH (:Layer {uid: 'digits-mlp/L1'})-[:HAS_NEURON]->(n:Neuron) "
                        "RETURN n.kind AS kind, n.entropy AS h, size(n.class_means) AS c", model="digits-mlp")
    assert len(hidden) == 32 and {r["kind"] for r in hidden} == {"hidden"} and {r["c"] for r in hidden} == {10}
    assert all(0 <= r["h"] <= 3.01 for r in hidden)
