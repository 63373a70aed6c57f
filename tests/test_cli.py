"""The command line end to end: demo, ingest, models, query, drop; and every bad input, through the
command line and the Python API, each refused in one line without writing anything."""

import json

import models
import numpy as np
import pytest
import torch
from helpers import cli, snapshot

from neurocypher.errors import UserError
from neurocypher.ingest import analyze, write
from neurocypher.ingest.demo_models import mlp
from neurocypher.queries import connect
from neurocypher.queries.chains import score_meaning

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
    npz("text_X", X=np.full((40, 4), "a"), y=y)
    npz("objects", X=np.array([object()] * 40, dtype=object), y=y)
    npz("unicode_names", X=X, y=y, class_names=np.array(["négatif", "正", "➕"]))
    for name, content in (
        ("corrupt.npz", b"not a zip archive"),
        ("corrupt.pt", b"not a torch file"),
        ("syntax.py", b"def small(:\n"),
    ):
        paths[name] = d / name
        paths[name].write_bytes(content)
    paths["list.pt"] = d / "list.pt"
    torch.save([1, 2, 3], paths["list.pt"])
    paths["pt"] = d / "good.pt"
    torch.save({"X": torch.from_numpy(X), "y": torch.from_numpy(y)}, paths["pt"])
    paths["csv"] = d / "data.csv"
    paths["csv"].write_text("1,2,3\n")
    paths["bad_weights"] = d / "mlp.pt"
    torch.save(mlp().state_dict(), paths["bad_weights"])
    with connect() as store:  # a stored model for the query parameter cases
        write(store, analyze(models.small(), X, y, name="cli-stored"), replace=True)
    return paths


def ingest_args(files, name="cli-small", data="good", model="small", *extra):
    return ["ingest", "--model", f"{MODELS}:{model}", "--data", str(files.get(data, data)), "--name", name, *extra]


BAD_INPUTS = [
    # (id, args builder, expected message fragment)
    (
        "missing model file",
        lambda f: ["ingest", "--model", "nope.py:small", "--data", str(f["good"]), "--name", "x"],
        "model file nope.py not found",
    ),
    (
        "model spec without factory",
        lambda f: ["ingest", "--model", MODELS, "--data", str(f["good"]), "--name", "x"],
        "is not FILE.py:FACTORY",
    ),
    ("missing factory", lambda f: ingest_args(f, model="nothing_here"), "has no function 'nothing_here'"),
    (
        "factory returns no module",
        lambda f: ingest_args(f, model="not_a_module"),
        "returned a dict, not a torch.nn.Module",
    ),
    ("factory raises", lambda f: ingest_args(f, model="broken"), "broken() in tests/models.py failed: cannot build"),
    ("weights do not fit", lambda f: ingest_args(f) + ["--weights", str(f["bad_weights"])], "do not fit the model"),
    ("weights missing", lambda f: ingest_args(f) + ["--weights", "absent.pt"], "weights file absent.pt not found"),
    ("data file missing", lambda f: ingest_args(f, data="absent.npz"), "data file absent.npz not found"),
    ("unknown device", lambda f: ingest_args(f) + ["--device", "tpu"], "device must be one of auto, cpu, cuda"),
    *(
        [("cuda without a GPU", lambda f: ingest_args(f) + ["--device", "cuda"], "torch sees no CUDA GPU")]
        if not torch.cuda.is_available()
        else []
    ),
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
    ("model output not class scores", lambda f: ingest_args(f, model="tuple_output"), "--logits INDEX|KEY"),
    ("bad model name", lambda f: ingest_args(f, name="bad name/../x"), "model name 'bad name/../x' is not allowed"),
    ("unknown layer name", lambda f: ingest_args(f) + ["--layers", "fc9"], "no module named fc9"),
    (
        "unknown community method",
        lambda f: ingest_args(f) + ["--methods", "flow,louvain"],
        "unknown community method louvain; choose from innersight, flow, weights, relay, neurflow",
    ),
    (
        "bad relay option",
        lambda f: ingest_args(f) + ["--binarization", "mean"],
        "option binarization must be one of kmeans, median, got 'mean'",
    ),
    (
        "unknown method option",
        lambda f: ingest_args(f) + ["--option", "flow.colour=3"],
        "method flow has no option 'colour'",
    ),
    (
        "method option of the wrong type",
        lambda f: ingest_args(f) + ["--option", "innersight.starts=x"],
        "option innersight.starts must be int, got 'x'",
    ),
    (
        "write in the console",
        lambda f: ["query", "--cypher", "MATCH (n) DETACH DELETE n"],
        "refused: DETACH would change the store",
    ),
    (
        "schema change in the console",
        lambda f: ["query", "--cypher", "CREATE INDEX FOR (n:Neuron) ON (n.x)"],
        "refused: CREATE",
    ),
    ("drop of an unknown model", lambda f: ["drop", "never-stored"], "no model named 'never-stored' is stored"),
    (
        "unknown named query",
        lambda f: ["query", "relay-paths"],
        "no query named 'relay-paths'; the queries are: models,",
    ),
    ("missing query parameter", lambda f: ["query", "top-relays", "--model", "x"], "top-relays needs parameter class"),
    (
        "query parameter of the wrong type",
        lambda f: ["query", "top-relays", "--model", "x", "--param", "class=three"],
        "parameter class must be int, got 'three'",
    ),
    (
        "negative class",
        lambda f: ["query", "attribution", "--model", "x", "--param", "class=-1"],
        "parameter class must be between 0 and None, got -1",
    ),
    (
        "huge limit",
        lambda f: ["query", "attribution", "--model", "x", "--param", "class=1", "--param", "limit=10000000"],
        "parameter limit must be between 1 and 1000",
    ),
    ("unknown query parameter", lambda f: ["query", "models", "--param", "model=x"], "models takes no parameter model"),
    ("query name and --cypher", lambda f: ["query", "models", "--cypher", "RETURN 1"], "not both or neither"),
    (
        "relay-path of a missing model",
        lambda f: ["query", "relay-path", "--model", "nope", "--param", "class=1"],
        "no model named 'nope' is stored",
    ),
    (
        "flow-between downwards",
        lambda f: [
            "query",
            "flow-between",
            "--model",
            "cli-stored",
            "--param",
            "source=cli-stored/L2/0",
            "--param",
            "target=cli-stored/L1/0",
        ],
        "must be in a higher layer",
    ),
    (
        "flow-between of a foreign neuron",
        lambda f: [
            "query",
            "flow-between",
            "--model",
            "cli-stored",
            "--param",
            "source=other/L0/0",
            "--param",
            "target=cli-stored/L1/0",
        ],
        "source 'other/L0/0' is not a neuron uid of model 'cli-stored'",
    ),
    ("compare of one model", lambda f: ["compare", "only-one"], "compare needs at least two model ids"),
    (
        "class beyond the model's",
        lambda f: ["query", "top-relays", "--model", "cli-stored", "--param", "class=7"],
        "class 7 is not a class of cli-stored: use 0..1",
    ),
    # long strings, unicode, injection attempts: refused or treated as data, never run
    ("100k-character model name", lambda f: ingest_args(f, name="n" * 100_000), "model name 'nnnnnnnn"),
    (
        "100k-character data path",
        lambda f: ingest_args(f, data="d" * 100_000 + ".npz"),
        "(100004 characters) not found",
    ),
    (
        "100k-character parameter",
        lambda f: [
            "query",
            "flow-between",
            "--model",
            "cli-stored",
            "--param",
            "source=" + "s" * 100_000,
            "--param",
            "target=cli-stored/L1/0",
        ],
        "(100002 characters) is not a neuron uid",
    ),
    (
        "100k-character Cypher",
        lambda f: ["query", "--model", "cli-stored", "--cypher", "RETURN " + "x" * 100_000 + " +"],
        "query failed: ",
    ),
    ("unicode model name", lambda f: ingest_args(f, name="réseau-神经"), "model name 'réseau-神经' is not allowed"),
    ("unicode query name", lambda f: ["query", "relay-päth"], "no query named 'relay-päth'"),
    (
        "unicode class names, one too many",
        lambda f: ingest_args(f, data="unicode_names"),
        "the data names 3 classes but the model outputs 2",
    ),
    (
        "unicode parameter",
        lambda f: [
            "query",
            "flow-between",
            "--model",
            "cli-stored",
            "--param",
            "source=神经元/L0/0",
            "--param",
            "target=cli-stored/L1/0",
        ],
        "source '神经元/L0/0' is not a neuron uid",
    ),
    ("Cypher in the model name", lambda f: ingest_args(f, name="x' }) DETACH DELETE n //"), "is not allowed"),
    (
        "Cypher in --model",
        lambda f: ["query", "top-relays", "--model", "x' }) MATCH (n) DETACH DELETE n //", "--param", "class=0"],
        'no model named "x\' }) MATCH (n) DETACH DELETE n //" is stored',
    ),
    (
        "Cypher in the console's model",
        lambda f: ["query", "--model", 'x") DETACH DELETE n //', "--cypher", "MATCH (n) RETURN count(n) AS c"],
        "no model named 'x\") DETACH",
    ),
    (
        "Cypher in a parameter name",
        lambda f: [
            "query",
            "--model",
            "cli-stored",
            "--cypher",
            "RETURN 1 AS one",
            "--param",
            "x`=1 MATCH (n) DETACH DELETE n //=1",
        ],
        "query parameter name 'x`' is not allowed",
    ),
    (
        "Cypher in a map key",
        lambda f: [
            "query",
            "--model",
            "cli-stored",
            "--cypher",
            "RETURN $m AS m",
            "--param",
            'm={"a`}) MATCH (n) DETACH DELETE n //": 1}',
        ],
        "holds a map key 'a`})",
    ),
    # huge, negative and non-finite numbers; wrong types
    (
        "limit 10**12 as written",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=0", "--param", "limit=10**12"],
        "parameter limit must be int, got '10**12'",
    ),
    (
        "limit 10^12",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=0", "--param", f"limit={10**12}"],
        "parameter limit must be between 1 and 1000, got 1000000000000",
    ),
    (
        "negative limit",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=0", "--param", "limit=-5"],
        "parameter limit must be between 1 and 1000, got -5",
    ),
    ("negative --class", lambda f: ["compare", "a", "b", "--class", "-1"], "Invalid value for '--class'"),
    (
        "integer beyond 64 bits",
        lambda f: ["query", "--model", "cli-stored", "--cypher", "RETURN $x AS x", "--param", f"x={10**30}"],
        "beyond 64-bit integers",
    ),
    (
        "NaN in the console",
        lambda f: ["query", "--model", "cli-stored", "--cypher", "RETURN $x AS x", "--param", "x=NaN"],
        "query parameter 'x' holds nan",
    ),
    (
        "infinite min_bits",
        lambda f: ["query", "relay-path", "--model", "cli-stored", "--param", "class=0", "--param", "min_bits=1e400"],
        "parameter min_bits must be a finite number, got inf",
    ),
    (
        "boolean class",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=true"],
        "parameter class must be int, got True",
    ),
    (
        "list as class",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=[1]"],
        "parameter class must be int, got [1]",
    ),
    (
        "fractional limit",
        lambda f: ["query", "attribution", "--model", "cli-stored", "--param", "class=0", "--param", "limit=2.5"],
        "parameter limit must be int, got 2.5",
    ),
    ("--param without =", lambda f: ["query", "models", "--param", "limit"], "--param 'limit' is not k=v"),
    (
        "non-numeric --batch-size",
        lambda f: ingest_args(f) + ["--batch-size", "many"],
        "Invalid value for '--batch-size'",
    ),
    ("--bins below 2", lambda f: ingest_args(f) + ["--bins", "1"], "option bins must be between 2 and 256, got 1"),
    ("unknown --format", lambda f: ["models", "--format", "xml"], "Invalid value for '--format'"),
    (
        "unknown command",
        lambda f: ["ingestt"],
        "No such command 'ingestt'. Did you mean 'ingest'? (see `neurocypher --help`)",
    ),
    ("unknown option", lambda f: ["query", "--nope"], "No such option: --nope"),
    ("missing argument", lambda f: ["drop"], "Missing argument 'name'. (see `neurocypher drop --help`)"),
    # data and model files
    ("X of text", lambda f: ingest_args(f, data="text_X"), "X must be numeric"),
    ("pickled objects in a .npz", lambda f: ingest_args(f, data="objects"), "Object arrays cannot be loaded"),
    ("corrupt .npz", lambda f: ingest_args(f, data="corrupt.npz"), "as a .npz archive of arrays"),
    (
        "corrupt .pt",
        lambda f: ingest_args(f, data="corrupt.pt"),
        "with torch.load(weights_only=True): not a file saved by torch.save",
    ),
    (
        ".pt data holding a list",
        lambda f: ingest_args(f, data="list.pt"),
        "holds a list; save a dict with keys X and y",
    ),
    (
        "weights holding a list",
        lambda f: ingest_args(f) + ["--weights", str(f["list.pt"])],
        "holds a list; save model.state_dict()",
    ),
    (
        "model file with a syntax error",
        lambda f: ["ingest", "--model", f"{f['syntax.py']}:small", "--data", str(f["good"]), "--name", "x"],
        "failed: SyntaxError",
    ),
    # the console
    (
        "Cypher syntax error",
        lambda f: ["query", "--model", "cli-stored", "--cypher", "MATCH (n RETURN n"],
        "query failed: syntax error at line 1, column 10: Invalid input 'R': expected a label",
    ),
    ("empty --cypher", lambda f: ["query", "--cypher", ""], "not both or neither"),
    (
        "CALL of a writing procedure",
        lambda f: ["query", "--cypher", "CALL db.idx.fulltext.drop('Neuron')"],
        "refused: CALL 'db.idx.fulltext.drop' is not a read-only procedure",
    ),
    ("another database", lambda f: ["query", "--cypher", "USE system SHOW USERS"], "refused: USE"),
]


@pytest.mark.parametrize("make_args, message", [case[1:] for case in BAD_INPUTS], ids=[c[0] for c in BAD_INPUTS])
def test_bad_input_gets_one_line_exit_2_and_writes_nothing(files, store, make_args, message):
    before = snapshot(store)
    done = cli(*make_args(files))
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and done.stderr.count("\n") == 1, done.stderr
    assert message in done.stderr and len(done.stderr) < 1000, done.stderr
    assert "Traceback" not in done.stderr + done.stdout
    assert snapshot(store) == before


def small_analysis(files, **given):
    """`ingest.analyze` of the small model on the good data file, with `given` keyword arguments."""
    data = np.load(files["good"])
    kwargs = {
        "model": models.small(),
        "X": data["X"],
        "y": data["y"],
        "name": "api-bad",
        "methods": (),
        "deletion": False,
        **given,
    }
    return analyze(kwargs.pop("model"), kwargs.pop("X"), kwargs.pop("y"), **kwargs)


API_BAD_INPUTS = [
    # (id, call(store, files), expected message fragment): each raises UserError
    (
        "analyze: 100k-character name",
        lambda s, f: small_analysis(f, name="n" * 100_000),
        "(100002 characters) is not allowed",
    ),
    ("analyze: unicode name", lambda s, f: small_analysis(f, name="модель"), "model name 'модель' is not allowed"),
    ("analyze: Cypher in the name", lambda s, f: small_analysis(f, name="x' }) DETACH DELETE n //"), "is not allowed"),
    (
        "analyze: negative labels",
        lambda s, f: small_analysis(f, y=np.load(f["good"])["y"] - 1),
        "labels must be integers in 0..1",
    ),
    ("analyze: X of text", lambda s, f: small_analysis(f, X="not an array"), "X must be numeric"),
    (
        "analyze: NaN in X",
        lambda s, f: small_analysis(f, X=np.full((40, 4), np.nan)),
        "X contains NaN or inf in 40 sample(s)",
    ),
    ("analyze: fractional labels", lambda s, f: small_analysis(f, y=np.full(40, 0.5)), "labels y must be integers"),
    (
        "analyze: y shorter than X",
        lambda s, f: small_analysis(f, y=np.zeros(3, int)),
        "X has 40 samples but y has 3 labels",
    ),
    (
        "analyze: not a module",
        lambda s, f: small_analysis(f, model={"fc": 1}),
        "model must be a torch.nn.Module, got a dict",
    ),
    ("analyze: one bin", lambda s, f: small_analysis(f, bins=1), "option bins must be between 2 and 256, got 1"),
    (
        "analyze: unknown method",
        lambda s, f: small_analysis(f, methods=("louvain",)),
        "unknown community method louvain",
    ),
    (
        "analyze: unicode class names, too few",
        lambda s, f: small_analysis(f, class_names=["猫"]),
        "the data names 1 classes but the model outputs 2",
    ),
    ("write: not an analysis", lambda s, f: write(s, {"name": "x"}), "not a dict"),
    (
        "write: stored model without replace",
        lambda s, f: write(s, small_analysis(f, name="cli-stored")),
        "model 'cli-stored' is already stored; pass --replace",
    ),
    ("ask: unknown query", lambda s, f: s.ask("relay-paths"), "no query named 'relay-paths'"),
    (
        "ask: negative class",
        lambda s, f: s.ask("top-relays", model="cli-stored", **{"class": -1}),
        "between 0 and None, got -1",
    ),
    (
        "ask: limit 10**12",
        lambda s, f: s.ask("attribution", model="cli-stored", limit=10**12, **{"class": 0}),
        "parameter limit must be between 1 and 1000",
    ),
    (
        "ask: limit of text",
        lambda s, f: s.ask("attribution", model="cli-stored", limit="ten", **{"class": 0}),
        "parameter limit must be int, got 'ten'",
    ),
    (
        "ask: NaN min_bits",
        lambda s, f: s.ask("relay-path", model="cli-stored", min_bits=float("nan"), **{"class": 0}),
        "parameter min_bits must be a finite number",
    ),
    (
        "ask: 100k-character model",
        lambda s, f: s.ask("top-relays", model="m" * 100_000, **{"class": 0}),
        "no model named 'mmmm",
    ),
    ("ask: unknown parameter", lambda s, f: s.ask("models", bogus=1), "models takes no parameter bogus"),
    (
        "ask: compare with a missing model",
        lambda s, f: s.ask("compare", models=["cli-stored", "nope"], **{"class": 0}),
        "no model named 'nope' is stored",
    ),
    ("console: write", lambda s, f: s.console("MATCH (n) DETACH DELETE n", model="cli-stored"), "refused: DETACH"),
    ("console: NaN", lambda s, f: s.console("RETURN $x AS x", {"x": float("nan")}, model="cli-stored"), "holds nan"),
    (
        "console: backtick in a parameter name",
        lambda s, f: s.console("RETURN 1 AS one", {"a`b": 1}, model="cli-stored"),
        "query parameter name 'a`b' is not allowed",
    ),
    (
        "console: integer beyond 64 bits",
        lambda s, f: s.console("RETURN $x AS x", {"x": 2**64}, model="cli-stored"),
        "beyond 64-bit integers",
    ),
    (
        "console: NUL character",
        lambda s, f: s.console("RETURN $x AS x", {"x": "a\0b"}, model="cli-stored"),
        "holds a NUL character",
    ),
    (
        "console: an object",
        lambda s, f: s.console("RETURN $x AS x", {"x": object()}, model="cli-stored"),
        "holds a object",
    ),
    ("console: syntax error", lambda s, f: s.console("MATCH (n RETURN n", model="cli-stored"), "query failed: "),
    (
        "console: negative LIMIT",
        lambda s, f: s.console("MATCH (n) RETURN n LIMIT $l", {"l": -1}, model="cli-stored"),
        "query failed: ",
    ),
    ("console: model not stored", lambda s, f: s.console("RETURN 1 AS one", model="nope"), "no model named 'nope'"),
]


@pytest.mark.parametrize("call, message", [case[1:] for case in API_BAD_INPUTS], ids=[c[0] for c in API_BAD_INPUTS])
def test_python_api_bad_input_raises_one_line_user_error_and_writes_nothing(files, store, call, message):
    before = snapshot(store)
    with pytest.raises(UserError) as raised:
        call(store, files)
    assert message in str(raised.value) and "\n" not in str(raised.value) and len(str(raised.value)) < 1000
    assert snapshot(store) == before


AS_DATA = [
    "x' }) MATCH (n) DETACH DELETE n //",
    'x" }) MATCH (n) DETACH DELETE n //',
    "`) DETACH DELETE n //",
    "*/ MATCH (n) DETACH DELETE n /*",
    "$model",
    "\\'; CALL db.idx.fulltext.drop('Neuron') //",
    "line\nbreak\ttab",
    "神经元 ➕ 𝄞 שלום e\u0301",
    "\u200b\u202e",
    "s" * 100_000,
]


@pytest.mark.parametrize("value", AS_DATA, ids=range(len(AS_DATA)))
def test_hostile_parameter_values_are_data(store, files, value):
    """Cypher, quotes, comments, unicode and 100k characters in a parameter come back as they went in."""
    before = snapshot(store)
    assert store.console("RETURN $v AS v", {"v": value}, model="cli-stored") == [{"v": value}]
    assert store.ask("neuron", model="cli-stored", uid=value) == []
    assert snapshot(store) == before


def test_hostile_parameter_through_the_cli_is_data(files, store):
    before = snapshot(store)
    done = cli(
        "query", "--model", "cli-stored", "--format", "json", "--param", f"v={AS_DATA[0]}", "--cypher", "RETURN $v AS v"
    )
    assert done.returncode == 0 and json.loads(done.stdout) == [{"v": AS_DATA[0]}], done.stderr
    assert snapshot(store) == before


def test_unreachable_neo4j_is_one_line_exit_2(files):
    for args in (ingest_args(files), ["models"], ["query", "--cypher", "RETURN 1 AS one"]):
        done = cli(*args, env={"NEO4J_URI": "bolt://127.0.0.1:9", "NEO4J_PASSWORD": "s3cret-value"})
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "cannot reach Neo4j at bolt://127.0.0.1:9" in done.stderr and "unset NEO4J_URI" in done.stderr
        assert "s3cret-value" not in done.stderr


def test_credentials_inside_neo4j_uri_are_refused_unechoed(files):
    env = {"NEO4J_URI": "neo4j://bob:s3cret-value@127.0.0.1:9"}
    for args in (ingest_args(files), ["models"], ["query", "--cypher", "RETURN 1 AS one"], ["db", "status"]):
        done = cli(*args, env=env)
        assert done.returncode == 2 and done.stderr.count("\n") == 1, done.stderr
        assert "NEO4J_URI holds a user name or password" in done.stderr and "NEO4J_PASSWORD" in done.stderr
        assert "s3cret-value" not in done.stdout + done.stderr


def test_ingest_reingest_and_replace(files, store):
    first = cli(*ingest_args(files, "cli-small"))
    assert first.returncode == 0, first.stderr
    assert (
        first.stdout.startswith("stored cli-small: ") and "11 neurons (input[4] -> 0[5] -> output[2])" in first.stdout
    )
    count = "MATCH (n:Neuron) RETURN count(n) AS n"
    assert store.read(count, model="cli-small") == [{"n": 11}]
    created = store.read("MATCH (m:Model) RETURN m.created_at AS t", model="cli-small")

    again = cli(*ingest_args(files, "cli-small"))
    assert again.returncode == 2 and "already stored; pass --replace" in again.stderr
    assert store.read("MATCH (m:Model) RETURN m.created_at AS t", model="cli-small") == created

    replaced = cli(*ingest_args(files, "cli-small", "pt", "small", "--replace"))
    assert replaced.returncode == 0, replaced.stderr
    assert store.read(count, model="cli-small") == [{"n": 11}]
    classes = store.read(
        "MATCH (:Model)-[:HAS_CLASS]->(c:Class) RETURN c.name AS name ORDER BY name", model="cli-small"
    )
    assert classes == [{"name": "0"}, {"name": "1"}]  # the .pt file names no classes


def test_query_formats_and_models(files, store):
    assert cli(*ingest_args(files, "cli-formats", "good", "small", "--replace")).returncode == 0
    cypher = [
        "query",
        "--model",
        "cli-formats",
        "--cypher",
        "MATCH (c:Class) RETURN c.index AS i, c.name AS name ORDER BY i",
    ]
    as_json = cli(*cypher, "--format", "json")
    assert json.loads(as_json.stdout) == [{"i": 0, "name": "neg"}, {"i": 1, "name": "pos"}]
    assert cli(*cypher, "--format", "csv").stdout == "i,name\n0,neg\n1,pos\n"
    params = cli(
        "query",
        "--model",
        "cli-formats",
        "--param",
        "k=1",
        "--format",
        "json",
        "--cypher",
        "MATCH (c:Class {index: $k}) RETURN c.name AS name",
    )
    assert json.loads(params.stdout) == [{"name": "pos"}]
    listed = cli("models", "--format", "json")
    assert "cli-formats" in [m["model_id"] for m in json.loads(listed.stdout)]
    assert cli("drop", "cli-formats").returncode == 0 and not store.has_model("cli-formats")


def test_demo_stores_both_models_and_the_console_answers(store):
    done = cli("demo", timeout=900)  # two models, a series: 1-2 minutes alone, more on a busy machine
    assert done.returncode == 0, done.stderr
    assert "digits-mlp:" in done.stdout and "digits-cnn:" in done.stdout
    assert f"(score in accuracy: {score_meaning('closing', 3)};" in done.stdout  # the explorer's words
    rows = store.read("MATCH (m:Model) RETURN m.model_id AS id, m.accuracy AS acc, m.n_neurons AS n")
    demo = {r["id"]: r for r in rows if r["id"] in ("digits-mlp", "digits-cnn")}
    assert demo["digits-mlp"]["n"] == 64 + 32 + 32 + 10 and demo["digits-cnn"]["n"] == 64 + 8 + 16 + 64 + 10
    assert min(r["acc"] for r in demo.values()) > 0.9
    assert "digits-mlp-training: 5 checkpoints of digits-mlp (epochs 1, 3, 10, 30, 60)" in done.stdout
    steps = store.ask("evolution", model="digits-mlp-training", method="relay", **{"class": 3})
    assert sorted({row["step"] for row in steps}) == [1, 3, 10, 30, 60]
    answer = cli(
        "query", "--model", "digits-mlp", "--format", "json", "--cypher", "MATCH (n:Neuron) RETURN count(n) AS n"
    )
    assert json.loads(answer.stdout) == [{"n": 138}]
    hidden = store.read(
        "MATCH (:Layer {uid: 'digits-mlp/L1'})-[:HAS_NEURON]->(n:Neuron) "
        "RETURN n.kind AS kind, n.entropy AS h, size(n.class_means) AS c",
        model="digits-mlp",
    )
    assert len(hidden) == 32 and {r["kind"] for r in hidden} == {"hidden"} and {r["c"] for r in hidden} == {10}
    assert all(0 <= r["h"] <= 3.01 for r in hidden)
