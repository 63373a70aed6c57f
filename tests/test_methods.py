"""The community-method registry: one interface, read by the analysis, the CLI and the README."""

import dataclasses
import re
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pytest
from helpers import cli

from neurocypher.ingest import AnalysisOptions, analyze, write
from neurocypher.ingest.communities import Found, Membership
from neurocypher.ingest.methods import METHODS, Method, default_methods, table
from neurocypher.queries import connect
from neurocypher.queries.declared import NODE_TYPES, Property

README = Path(__file__).resolve().parents[1] / "README.md"


def test_every_method_declares_what_the_registry_needs():
    assert list(METHODS) == ["innersight", "flow", "weights", "relay", "neurflow"]
    for name, method in METHODS.items():
        assert method.name == name and method.description and "\n" not in method.description
        assert re.search(r"arXiv:\d{4}\.\d{4,5}|doi:10\.|openreview\.net", method.reference), method.reference
        assert method.find.__doc__ and "References" in method.find.__doc__ and "Returns" in method.find.__doc__
        method.options()  # every option has a default
        assert method.options.method == name  # its errors name an option NAME.OPTION, as --option does
        assert all(f.metadata["help"] for f in fields(method.options))
    assert default_methods() == tuple(METHODS) == AnalysisOptions().methods


def test_readme_table_is_the_registry():
    assert table() in README.read_text()
    listed = cli("methods")
    assert listed.returncode == 0, listed.stderr
    assert table() in listed.stdout


def test_ingest_help_reads_its_default_from_the_registry():
    shown = cli("ingest", "--help")
    assert shown.returncode == 0
    assert all(name in shown.stdout for name in METHODS)


@dataclass(frozen=True)
class _HalvesOptions:
    pass


def find(context, options) -> Found:
    """The sixth method, whose module is this one: each hidden layer in two halves."""
    memberships = [
        Membership("halves", layer.index, np.eye(2)[(np.arange(layer.width) >= layer.width // 2).astype(int)])
        for layer in context.layers[1:-1]
    ]
    return Found(memberships=memberships, metrics={"halves_layers": len(memberships)})


def test_a_sixth_method_needs_its_registry_entry_and_the_declaration_of_what_it_stores(monkeypatch, digits):
    from neurocypher.ingest.demo_models import mlp

    monkeypatch.setitem(
        METHODS,
        "halves",
        Method("halves", "two halves per layer", "none, arXiv:0000.00000", _HalvesOptions, __name__, default=False),
    )
    a = analyze(mlp(), digits.X[:200], digits.y[:200], name="m-halves", methods=("halves",), deletion=False)
    assert a.methods == ["halves"] and a.metrics["halves_layers"] == 2
    found = [c for c in a.communities if c.method == "halves" and 0 < c.layer < 3]
    assert len(found) == 4 and all("relay_bits" in c.props and "acc_drop" in c.props for c in found)
    with connect() as store:
        with pytest.raises(ValueError, match="Model property 'halves_layers' is not declared in queries/declared.py"):
            write(store, a, replace=True)
        assert not store.has_model("m-halves")
        model = NODE_TYPES["Model"]
        layers = Property("halves_layers", int, "layers", "hidden layers split in halves", "method halves")
        monkeypatch.setitem(NODE_TYPES, "Model", dataclasses.replace(model, properties=(*model.properties, layers)))
        write(store, a, replace=True)
        rows = store.ask("top-relays", model="m-halves", method="halves", limit=100, **{"class": 0})
        assert len(rows) == 1 + 4 + 1  # all inputs, the halves, class 0's output (not the other classes')
        chains = store.ask("relay-path", model="m-halves", method="halves", **{"class": 3})
        assert chains and all(chain["chain"][-1] == "m-halves/halves/L3/c3" for chain in chains)


def test_method_options_are_typed(digits):
    options = AnalysisOptions().with_method_option("innersight.starts=2")
    assert options.of("innersight").starts == 2 and AnalysisOptions().of("innersight").starts == 4
    with pytest.raises(Exception, match="method innersight has no option 'colour'; its options: starts, "):
        AnalysisOptions().with_method_option("innersight.colour=2")
    with pytest.raises(Exception, match="must be int"):
        AnalysisOptions().with_method_option("innersight.starts=many")
    assert options.as_params()["method_options"]["innersight"]["starts"] == 2
