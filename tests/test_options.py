"""The options' declaration: every bound holds alike for the Python API, the command line and
`--option METHOD.NAME=VALUE`, each refusing a value beyond it in one line that names the option,
the bound and the value."""

import subprocess
import sys
from dataclasses import fields

import numpy as np
import pytest

from neurocypher.cli import main
from neurocypher.errors import UserError, shown
from neurocypher.ingest import AnalysisOptions, analyze
from neurocypher.ingest.bounds import Bounds
from neurocypher.ingest.information import MAX_BINS, discretize
from neurocypher.ingest.methods import METHODS


def beyond(field) -> list:
    """Values of option `field`'s type just beyond each of its bounds."""
    bounds: Bounds = field.metadata["bounds"]
    if bounds.choices:
        return ["nope"]
    ends = ([] if bounds.low is None else [bounds.low - 1]) + ([] if bounds.high is None else [bounds.high + 1])
    return [field.type(end) for end in ends]


def cases() -> list[tuple[str, str, object]]:
    """(method or "" for the analysis, option, value beyond a bound) for every bounded option."""
    declared = [("", f) for f in fields(AnalysisOptions)] + [
        (name, f) for name, method in METHODS.items() for f in fields(method.options)
    ]
    return [(method, f.name, value) for method, f in declared for value in beyond(f)]


CASES = cases()


def test_the_walk_reaches_every_kind_of_bound():
    assert {("", "bins", 1), ("", "bins", MAX_BINS + 1), ("", "relay_states", 1), ("", "device", "nope")} <= set(CASES)
    assert {("relay", "essential", 2.0), ("innersight", "seed", 2**32), ("neurflow", "draws", 0)} <= set(CASES)
    assert not [case for case in CASES if case[0] == "flow"]  # any seed does for Leiden


def expected(method: str, name: str, value) -> str:
    """The one message each path gives, from the declaration."""
    options = METHODS[method].options if method else AnalysisOptions
    key = f"{method}.{name}" if method else name
    return f"option {key} must be {options.__dataclass_fields__[name].metadata['bounds']}, got {shown(value)}"


def cli_error(capsys, monkeypatch, *args: str) -> str:
    """What `neurocypher ingest ... ARGS` prints when it stops on a bad input (exit status 2)."""
    command = ["neurocypher", "ingest", "--model", "m.py:f", "--data", "d.npz", "--name", "x", *args]
    monkeypatch.setattr(sys, "argv", command)
    with pytest.raises(SystemExit) as stopped:
        main()
    assert stopped.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("method, name, value", CASES, ids=[f"{m or 'analysis'}.{n}={v}" for m, n, v in CASES])
def test_each_bound_is_refused_alike_by_the_api_the_cli_and_option(capsys, monkeypatch, method, name, value):
    message = expected(method, name, value)
    flag = f"--{name.replace('_', '-')}"
    if method:
        with pytest.raises(UserError) as api:
            METHODS[method].options(**{name: value})
        with pytest.raises(UserError) as option:
            AnalysisOptions().with_method_option(f"{method}.{name}={value}")
        assert str(option.value) == message
        printed = cli_error(capsys, monkeypatch, "--option", f"{method}.{name}={value}")
    else:
        with pytest.raises(UserError) as api:
            AnalysisOptions(**{name: value})
        printed = cli_error(capsys, monkeypatch, flag, str(value))
    assert str(api.value) == message
    assert printed == f"error: {message}\n"


def test_a_value_of_another_type_is_refused_in_one_line(digits):
    with pytest.raises(UserError, match=r"^option top_k must be int, got '32'$"):
        AnalysisOptions(top_k="32")
    with pytest.raises(UserError, match=r"^option memory_budget must be finite float, got inf$"):
        analyze(None, digits.X, digits.y, name="x", memory_budget=float("inf"))
    with pytest.raises(UserError, match=r"^option relay\.essential must be finite float, got 'x'$"):
        AnalysisOptions().with_method_option("relay.essential=x")
    with pytest.raises(UserError, match=r"^method_options\['relay'\] must be a RelayOptions, got a dict$"):
        AnalysisOptions(method_options={"relay": {"samples_per_state": 32}})


def test_the_most_bins_are_what_the_codes_hold():
    codes = discretize(np.arange(1024, dtype=np.float32)[:, None], MAX_BINS)
    assert np.unique(codes).tolist() == list(range(MAX_BINS))  # every code, none wrapped around
    assert AnalysisOptions(bins=MAX_BINS).bins == MAX_BINS


def test_the_options_load_none_of_the_methods_libraries():
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, neurocypher.ingest.options, neurocypher.ingest.methods; "
            "print(sorted({'igraph', 'leidenalg', 'sklearn', 'scipy.cluster'} & set(sys.modules)))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert loaded.stdout.strip() == "[]", loaded.stdout + loaded.stderr
