"""Training checkpoints stored as one series (`ingest --checkpoints`), and the `evolution` query on
networks whose answer is known: identical checkpoints continue every community; a hand-built series
holds a planted split, merge and appearance. On both backends, the explorer's timeline too."""

import json

import numpy as np
import pyarrow as pa
import pytest
import torch
from helpers import cli, snapshot
from pages import open_page

from neurocypher.ingest.demo_models import mlp
from neurocypher.ingest.series import chain_changes, jaccard, linked, settled_step
from neurocypher.queries import explore
from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet

SERIES = "x-series"


pytestmark = pytest.mark.both_backends


@pytest.fixture(scope="module")
def checkpoints(digits, tmp_path_factory):
    """Checkpoints of the demo MLP: step 0 (one initialisation, a plain state dict named by its
    step), steps 10 and 20 (the same other weights, saved as dicts with a metric)."""
    d = tmp_path_factory.mktemp("ckpts")
    np.savez(d / "probe.npz", X=digits.X[:300], y=digits.y[:300])
    torch.manual_seed(1)
    torch.save(mlp().state_dict(), d / "ckpt-0.pt")
    torch.manual_seed(2)
    later = mlp().state_dict()
    for step, loss in ((10, 0.9), (20, 0.5)):
        torch.save({"state_dict": later, "step": step, "metrics": {"train loss": loss}}, d / f"later-{step}.pt")
    return d


@pytest.fixture(scope="module")
def said() -> dict:
    """What `ingest --checkpoints` said, by backend."""
    return {}


@pytest.fixture()
def run(backend, checkpoints, said):
    """The checkpoints stored as series x-series (by the first test of each backend that asks), and
    what the ingest said."""
    if backend not in said:
        done = cli(
            "ingest", "--model", "ingest/demo_models.py:mlp", "--data", str(checkpoints / "probe.npz"),
            "--name", SERIES, "--checkpoints", str(checkpoints / "*.pt"), "--methods", "innersight,relay",
            "--replace",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        said[backend] = done.stdout
    return checkpoints, said[backend]


def test_each_checkpoint_is_a_model_and_the_series_links_them_in_step_order(store, run):
    _, said = run
    assert f"stored series {SERIES}: 3 checkpoints" in said
    listed = {m["model_id"] for m in store.models()}
    assert {f"{SERIES}-step{s}" for s in (0, 10, 20)} <= listed and SERIES not in listed
    head = store.console("MATCH (m:Model) RETURN m.series AS series, m.step AS step", model=f"{SERIES}-step10")
    assert head == [{"series": SERIES, "step": 10}]
    chain = store.console(
        "MATCH (a:Checkpoint)-[:NEXT]->(b:Checkpoint) RETURN a.step AS a, b.step AS b, b.metric_train_loss AS loss "
        "ORDER BY a",
        model=SERIES,
    )
    assert chain == [{"a": 0, "b": 10, "loss": 0.9}, {"a": 10, "b": 20, "loss": 0.5}]


@pytest.mark.parametrize("method", ["innersight", "relay"])
def test_identical_checkpoints_continue_every_community_of_the_chain(store, run, method):
    for c in range(10):
        rows = store.ask("evolution", model=SERIES, method=method, **{"class": c})
        last = [row for row in rows if row["step"] == 20]
        assert last, f"class {c} has a chain at step 20"
        for row in last:  # the same weights at 10 and 20: each community continues from its twin, whole
            assert row["event"] == "continued"
            assert row["sources"] == [row["community"].replace("-step20/", "-step10/")]
        assert settled_step(rows) in (0, 10)  # it can change no later than step 10


def test_identical_checkpoints_overlap_whole_and_match_first(store, run):
    rows = store.console(
        "MATCH (a:Community)-[s:MATCHES]->(b:Community) WHERE a.step = 10 "
        "RETURN a.uid AS a, b.uid AS b, s.overlap AS overlap, s.similarity AS similarity, s.best AS best",
        model=SERIES,
    )
    twins = [row for row in rows if row["b"] == row["a"].replace("-step10/", "-step20/")]
    assert len(twins) == len({row["a"] for row in rows})  # every community has its twin
    assert all(row["overlap"] == 1.0 for row in twins)
    similar = [row["similarity"] == pytest.approx(1.0) for row in twins]  # 0: a profile without variation
    assert all(ok or row["similarity"] == 0.0 for ok, row in zip(similar, twins)) and sum(similar) > len(twins) / 2
    assert all(row["best"] == 1 for row in twins if len({r["b"] for r in rows if r["a"] == row["a"]}) == 1)


def planted_series(name: str) -> ModelGraph:
    """Steps 0, 1, 2 of one layer: A splits into B1 and B2, which merge into C; D appears at step 2;
    E is not on class 0's chain; a MATCHES below the least overlap links nothing."""
    checkpoints = [{"uid": f"{name}/checkpoint/{s}", "index": s, "step": s} for s in range(3)]
    names = [("A", 0, [0]), ("B1", 1, [0]), ("B2", 1, [0]), ("C", 2, [0]), ("D", 2, [0]), ("E", 2, [1]), ("F", 1, [])]
    communities = [
        {"uid": uid, "step": step, "method": "m", "layer": 1, "label": uid, "chain_classes": chain}
        for uid, step, chain in names
    ]
    at = {uid: i for i, (uid, _, _) in enumerate(names)}
    links = [("A", "B1", 0.6), ("A", "B2", 0.4), ("B1", "C", 0.5), ("B2", "C", 0.35), ("F", "D", 0.1)]
    return ModelGraph(
        name,
        [
            NodeSet("Model", [{"uid": name, "kind": "series", "status": "complete", "n_classes": 2}]),
            NodeSet("Checkpoint", checkpoints),
            NodeSet("Community", communities),
        ],
        [
            RelSet("HAS_CHECKPOINT", "Model", "Checkpoint", np.zeros(3, np.int64), np.arange(3)),
            RelSet("NEXT", "Checkpoint", "Checkpoint", np.arange(2), np.arange(1, 3)),
            RelSet("HAS_COMMUNITY", "Checkpoint", "Community", np.array([s for _, s, _ in names]), np.arange(7)),
            RelSet(
                "MATCHES",
                "Community",
                "Community",
                np.array([at[a] for a, _, _ in links]),
                np.array([at[b] for _, b, _ in links]),
                {"overlap": np.array([o for *_, o in links])},
            ),
        ],
    )


def test_evolution_finds_a_planted_split_merge_and_appearance(store):
    store.write_model(planted_series("x-planted"), replace=True)
    rows = store.ask("evolution", model="x-planted", method="m", **{"class": 0})
    events = {row["community"]: (row["step"], row["event"], sorted(row["sources"])) for row in rows}
    assert events == {
        "A": (0, "first", []),
        "B1": (1, "split", ["A"]),
        "B2": (1, "split", ["A"]),
        "C": (2, "merged", ["B1", "B2"]),
        "D": (2, "appeared", []),
    }
    stricter = store.ask("evolution", model="x-planted", method="m", min_overlap=0.45, **{"class": 0})
    assert {row["community"]: row["event"] for row in stricter} == {
        "A": "first",
        "B1": "continued",
        "B2": "appeared",
        "C": "continued",
        "D": "appeared",
    }
    assert chain_changes(stricter) == [1, 2] and settled_step(stricter) is None  # it changed at the last step


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--checkpoints", "/nonexistent/*.pt"], "matches no file; quote the pattern"),
        (["--checkpoints", "{d}/*.pt", "--weights", "{d}/ckpt-0.pt"], "not both"),
        (["--checkpoints", "{d}/dup/*.pt"], "two checkpoints have step 5"),
        (["--checkpoints", "{d}/nostep/*.pt"], "cannot tell the step of"),
    ],
)
def test_bad_checkpoints_are_one_line_exit_2_and_write_nothing(store, run, extra, message):
    d, _ = run
    for sub, names in (("dup", ["a-5.pt", "b-5.pt"]), ("nostep", ["final.pt"])):
        (d / sub).mkdir(exist_ok=True)
        for name in names:
            torch.save(mlp().state_dict(), d / sub / name)
    before = snapshot(store)
    done = cli(
        "ingest", "--model", "ingest/demo_models.py:mlp", "--data", str(d / "probe.npz"), "--name", "x-bad-series",
        *[arg.format(d=d) for arg in extra],
    )  # fmt: skip
    assert done.returncode == 2 and message in done.stderr and done.stderr.count("\n") == 1
    assert snapshot(store) == before


def test_overlap_links_best_matches_only():
    overlap = jaccard([[0, 1, 2], [1, 2, 3], [9]], [[0, 1, 2], [1, 2, 3], [40]])  # member lists of any length
    assert np.allclose(overlap, [[1.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 0.0]])
    # the first two overlap by design (0.5), but each continues as its twin only
    assert linked(overlap).tolist() == [[True, False, False], [False, True, False], [False, False, False]]
    assert linked(jaccard([[0, 1, 2, 3]], [[0, 1], [2, 3]])).tolist() == [[True, True]]  # a split
    assert linked(jaccard([[0, 1], [2, 3]], [[0, 1, 2, 3]])).tolist() == [[True], [True]]  # a merge


def test_the_compare_page_shows_a_series_as_a_timeline(store, run):
    app = open_page("compare", series=SERIES, method="innersight", **{"class": "4"})
    specs = {json.loads(c.proto.spec)["title"]: c for c in app.get("vega_lite_chart")}
    timeline = next(c for title, c in specs.items() if title.startswith("class 4's relay-path chain"))
    cells = pa.ipc.open_stream(timeline.proto.datasets[0].data.data).read_all().to_pylist()
    asked = store.ask("evolution", model=SERIES, method="innersight", **{"class": 4})
    assert [(c["step"], c["layer"], c["event"]) for c in cells] == [(r["step"], r["layer"], r["event"]) for r in asked]
    steps = [row["checkpoint"]["step"] for row in store.read(explore.CHECKPOINTS, {"model": SERIES}, model=SERIES)]
    assert steps == [0, 10, 20]
    accuracy, loss = specs["probe accuracy per checkpoint"], specs["train loss per checkpoint"]  # an axis each
    for chart, title in ((accuracy, "accuracy (fraction)"), (loss, "train loss")):
        encoding = json.loads(chart.proto.spec)["encoding"]
        assert encoding["y"]["title"] == title and encoding["x"]["scale"]["type"] == "symlog"  # steps 0, 10, 20
