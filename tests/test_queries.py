"""The named query library on the specialists fixture: every query runs on the embedded store and
on Neo4j and gives the answer computed in Python from the analysis (networkx for paths)."""

import json
import subprocess
import sys

import networkx as nx
import numpy as np
import pytest
from helpers import cli, python_relay_paths, snapshot
from specialists import SPECIALISTS

from neurocypher.queries.graph import ModelGraph, NodeSet, RelSet
from neurocypher.queries.library import QUERIES


def find(a, uid):
    return next(c for c in a.communities if a.community_uid(c) == uid)


@pytest.mark.both_backends
@pytest.mark.parametrize("c", range(SPECIALISTS))
def test_relay_path_returns_the_specialist_chain_first(store, stored, specialists, c):
    a, _ = stored
    rows = store.ask("relay-path", model="q-spec", **{"class": c}, limit=3)
    expected = python_relay_paths(a, c)[:3]
    assert [r["chain"] for r in rows] == [path for _, path in expected]
    assert [r["score"] for r in rows] == pytest.approx([score for score, _ in expected])
    chain = rows[0]["chain"]
    for layer in (1, 2):
        members = find(a, chain[layer]).members
        assert set(members) == set(np.flatnonzero(specialists.blocks == c))
    assert find(a, chain[-1]).members.tolist() == [c] and rows[0]["layers"] == [0, 1, 2, 3]


def chains_by_score(scored) -> dict[float, set]:
    """The chains of each score (to 9 digits): chains that tie may come in either order."""
    groups = {}
    for score, chain in scored:
        groups.setdefault(round(score, 9), set()).add(tuple(chain))
    return groups


@pytest.mark.both_backends
def test_relay_path_min_bits_scores_and_other_methods(store, stored):
    a, _ = stored
    for method, min_bits in (("flow", 0.0), ("innersight", 0.2), ("weights", 0.05), ("weights", None)):
        for score in ("closing", "relay"):
            rows = store.ask(
                "relay-path", model="q-spec", **{"class": 1}, method=method, min_bits=min_bits, score=score, limit=1000
            )
            expected = python_relay_paths(a, 1, method, min_bits, f"{score}_specificity")
            assert [r["score"] for r in rows] == pytest.approx([s for s, _ in expected])
            assert chains_by_score((r["score"], r["chain"]) for r in rows) == chains_by_score(expected)
            assert min_bits is None or all(min(r["bits"][1:-1]) >= min_bits for r in rows)  # the hidden communities


@pytest.mark.both_backends
def test_top_relays_key_noise_and_attribution(store, stored):
    a, _ = stored
    inner = [x for x in a.communities if x.method == "innersight" and x.props.get("class") in (None, 2)]
    rows = store.ask("top-relays", model="q-spec", **{"class": 2}, limit=4)
    expected = sorted(inner, key=lambda x: (-x.props["relay_bits"][2], a.community_uid(x)))[:4]
    assert [r["community"] for r in rows] == [a.community_uid(x) for x in expected]
    every = store.ask("top-relays", model="q-spec", **{"class": 2}, limit=1000)
    assert {r["community"] for r in every if r["layer"] == 3} == {"q-spec/innersight/L3/c2"}, "not other outputs"
    key = store.ask("key-communities", model="q-spec", method="flow", limit=100)
    flows = [x for x in a.communities if x.method == "flow"]
    assert {r["community"] for r in key} == {a.community_uid(x) for x in flows if x.props["role"] == "key"}
    assert [r["acc_drop"] for r in key] == sorted((r["acc_drop"] for r in key), reverse=True)
    noise = store.ask("noise-communities", model="q-spec", method="flow")
    assert {r["community"] for r in noise} == {a.community_uid(x) for x in flows if x.props["role"] == "noise"}
    top = store.ask("attribution", model="q-spec", **{"class": 0}, limit=5)
    assert [r["index"] for r in top] == np.argsort(-a.attribution[0], kind="stable")[:5].tolist()


@pytest.mark.both_backends
def test_community_and_neuron(store, stored):
    a, _ = stored
    x = next(c for c in a.communities if c.method == "flow" and c.layer == 1)
    row = store.ask("community", model="q-spec", uid=a.community_uid(x))[0]
    assert row["members"] == [a.uid(1, i) for i in sorted(x.members)]
    assert [r["bits"] for r in row["relays"]] == pytest.approx(x.props["relay_bits"].tolist())
    assert [r["acc_drop"] for r in row["relays"]] == pytest.approx(x.props["class_acc_drop"].tolist())
    out = {f["community"]: f["bits"] for f in row["flows_out"]}
    expected = {
        f"q-spec/flow/L2/c{j}": bits
        for f in a.community_flows
        if f.method == "flow" and f.lower == 1
        for i, j, bits in zip(f.source, f.target, f.bits)
        if i == x.index
    }
    assert out == pytest.approx(expected)
    neuron = store.ask("neuron", model="q-spec", uid="q-spec/L1/7", limit=3)[0]
    flow = a.flows[0]
    incoming = np.sort(flow.bits[flow.target == 7])[::-1][:3]
    assert [f["bits"] for f in neuron["flows_in"]] == pytest.approx(incoming.tolist())
    assert neuron["relay_score"] == pytest.approx(a.layers[1].props["relay_score"][7])
    assert {m["community"] for m in neuron["memberships"] if m["primary"] == 1} == {
        a.community_uid(c) for c in a.communities if c.layer == 1 and 7 in c.members
    }


@pytest.mark.both_backends
def test_flow_between_matches_networkx_paths(store, stored):
    a, _ = stored
    graph = nx.DiGraph()
    for f in a.flows:
        for i, j, share in zip(f.source, f.target, f.share):
            graph.add_edge(a.uid(f.lower, i), a.uid(f.lower + 1, j), share=share)
    source = a.uid(0, int(np.argmax(a.attribution[0])))
    target = a.uid(3, 0)
    paths = sorted(
        (
            (np.prod([graph.edges[u, v]["share"] for u, v in zip(p, p[1:])]), p)
            for p in nx.all_simple_paths(graph, source, target)
        ),
        key=lambda fp: -fp[0],
    )[:5]
    rows = store.ask("flow-between", model="q-spec", source=source, target=target)
    assert [r["path"] for r in rows] == [p for _, p in paths]
    assert [r["flow"] for r in rows] == pytest.approx([f for f, _ in paths])
    assert sum(
        r["flow"] for r in store.ask("flow-between", model="q-spec", source=source, target=target, limit=1000)
    ) == pytest.approx(a.flow_between(source, target))


@pytest.mark.both_backends
def test_models_and_compare(store, stored):
    a, b = stored
    listed = [r["model"] for r in store.ask("models")]
    assert {"q-spec", "q-spec2"} <= set(listed)
    rows = store.ask("compare", models=["q-spec2", "q-spec"], **{"class": 1})
    assert [r["model"] for r in rows] == ["q-spec2", "q-spec"]
    for row, analysis in zip(rows, (b, a)):
        assert row["accuracy"] == pytest.approx(analysis.accuracy)
        per_layer = np.bincount([x.layer for x in analysis.communities if x.method == "innersight"])
        assert row["communities_per_layer"] == [[layer, int(n)] for layer, n in enumerate(per_layer)]
        assert row["top_chain"] == python_relay_paths(analysis, 1)[0][1]


@pytest.mark.both_backends
def test_matching_pairs_the_same_specialists(store, stored, specialists):
    from neurocypher.ingest.matching import match_communities

    matches = match_communities(store, "q-spec", "q-spec2")
    a, b = stored
    blocks = specialists.blocks  # both fixtures share the block layout
    for m in (m for m in matches if m["layer_a"] in (1, 2)):
        owners = [
            np.bincount(blocks[find(x, m[k]).members], minlength=SPECIALISTS).argmax() for x, k in ((a, "a"), (b, "b"))
        ]
        assert owners[0] == owners[1] and m["similarity"] > 0.9
    assert {(m["a"].split("/")[-1], m["b"].split("/")[-1]) for m in matches if m["layer_a"] == 3} == {
        (f"c{c}", f"c{c}") for c in range(4)
    }


def two_modules(name: str, profiles: list[list[float]]) -> ModelGraph:
    """A model whose layer 1 holds two relay modules of one neuron each: module c made for class c,
    its neuron's class means `profiles[c]`."""
    model = {"uid": name, "kind": "model", "status": "complete", "dataset": "x", "n_classes": 3, "n_samples": 9}
    neurons = [{"uid": f"{name}/L1/{c}", "layer": 1, "index": c, "class_means": p} for c, p in enumerate(profiles)]
    modules = [{"uid": f"{name}/relay/L1/c{c}", "method": "relay", "layer": 1, "class": c} for c in range(2)]
    member_of = RelSet("MEMBER_OF", "Neuron", "Community", np.arange(2), np.arange(2), {"primary": np.ones(2, int)})
    return ModelGraph(
        name, [NodeSet("Model", [model]), NodeSet("Neuron", neurons), NodeSet("Community", modules)], [member_of]
    )


def test_matching_pairs_communities_made_for_one_class_only_within_it(store):
    """Class 0's module of A responds as class 1's of B, and the other way round: the profiles alone
    would pair them across classes."""
    one, other = [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]
    store.write_model(two_modules("x-modules-a", [one, other]), replace=True)
    store.write_model(two_modules("x-modules-b", [other, one]), replace=True)
    from neurocypher.ingest.matching import match_communities

    pairs = {
        (m["a"].rsplit("/", 1)[1], m["b"].rsplit("/", 1)[1])
        for m in match_communities(store, "x-modules-a", "x-modules-b", "relay")
    }
    assert pairs == {("c0", "c0"), ("c1", "c1")}
    for name in ("x-modules-a", "x-modules-b"):
        store.drop(name)


def test_matching_writes_nothing_and_the_embedded_store_keeps_no_matches(store, stored):
    from neurocypher.ingest.matching import match_communities, store_matches

    before = snapshot(store)
    matches = match_communities(store, "q-spec", "q-spec2")
    assert snapshot(store) == before
    store_matches(store, matches)  # each model is a graph of its own: nothing can join them
    assert matches and snapshot(store) == before


QUERY_SIDE = """
import sys
from importlib.metadata import entry_points

from neurocypher.queries import connect
from neurocypher.ingest.matching import match_communities

main = entry_points(group="console_scripts")["neurocypher"].load()
for args in (["models"], ["db", "status"], ["query", "--list"],
             ["query", "relay-path", "--model", "q-spec", "--param", "class=0", "--format", "json"],
             ["query", "--model", "q-spec", "--cypher", "MATCH (c:Community) RETURN count(c) AS c"]):
    sys.argv = ["neurocypher", *args]
    try:
        main()
    except SystemExit as exit:
        assert exit.code == 0, (args, exit.code)
with connect() as store:
    assert store.ask("top-relays", model="q-spec", **{"class": 1})
    assert match_communities(store, "q-spec", "q-spec2")
assert "torch" not in sys.modules, "the query side imported torch"
"""


@pytest.mark.both_backends
def test_query_side_needs_no_torch(stored):
    """`neurocypher models`, `db status` and `query`, the named queries and matching run without
    importing torch."""
    done = subprocess.run([sys.executable, "-c", QUERY_SIDE], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "q-spec/innersight/L1/" in done.stdout


@pytest.mark.both_backends
def test_cli_lists_and_asks(stored):
    listed = cli("query", "--list")
    assert listed.returncode == 0 and len(listed.stdout.splitlines()) == 2 * len(QUERIES)  # each, and what it reads
    assert all(q.bound and f"    reads: {q.bound}" in listed.stdout for q in QUERIES.values())
    asked = cli(
        "query", "relay-path", "--model", "q-spec", "--param", "class=2", "--param", "limit=1", "--format", "json"
    )
    assert asked.returncode == 0, asked.stderr
    assert json.loads(asked.stdout)[0]["chain"][1].startswith("q-spec/innersight/L1/")
    compared = cli("compare", "q-spec", "q-spec2", "--class", "1", "--format", "json")
    assert compared.returncode == 0, compared.stderr
    answer = json.loads(compared.stdout)
    assert [r["model"] for r in answer["models"]] == ["q-spec", "q-spec2"]
    assert answer["matches"][0]["similarity"] > 0.9
