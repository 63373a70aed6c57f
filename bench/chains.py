"""The causal check of relay-path answers on trained networks nobody planted: for each model, method,
chain score (`queries.chains.SCORES`) and class k, the top chain's hidden communities are closed
together and every class's accuracy lost is measured (`ingest.fidelity`). A chain is specific when
class k loses at least 3x what the most-hurt other class loses, and beats chance when class k loses
at least 3x the median over 20 random chains of the same sizes in the same layers.

Models: the demo's digits-mlp (64-32-32-10) and digits-cnn, and ReLU MLPs 64-48-24-10 and
64-64-64-32-10 trained the demo's way (Adam, 60 epochs, seed 1) on 3/4 of the digits; all analysed
on the 1,797 digits with every default method.

    .venv/bin/python bench/chains.py [--close-to-zero]
"""

import argparse
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
from sklearn.model_selection import train_test_split
from torch import nn

from neurocypher.ingest import analyze
from neurocypher.ingest.data import load_data
from neurocypher.ingest.demo import SEED, train, trained
from neurocypher.ingest.fidelity import measure_chains
from neurocypher.ingest.neuronize import ClassScores
from neurocypher.queries.chains import DEFAULT_SCORE, SCORES

CACHE = Path.home() / ".neurocypher" / "demo"
MLP_WIDTHS = ((48, 24), (64, 64, 32))


def relu_mlp(widths: tuple[int, ...]) -> nn.Module:
    layers, previous = OrderedDict(), 64
    for i, width in enumerate(widths, start=1):
        layers[f"fc{i}"], layers[f"relu{i}"], previous = nn.Linear(previous, width), nn.ReLU(), width
    layers["out"] = nn.Linear(previous, 10)
    return nn.Sequential(layers)


def models(data):
    """(name, trained model) for every benchmarked network."""
    for name in ("digits-mlp", "digits-cnn"):
        yield name, trained(name, CACHE)[0]
    X_train, _, y_train, _ = train_test_split(data.X, data.y, test_size=0.25, random_state=SEED, stratify=data.y)
    for widths in MLP_WIDTHS:
        torch.manual_seed(1)
        yield "64-" + "-".join(map(str, widths)) + "-10", train(relu_mlp(widths), X_train, y_train, 60)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--close-to-zero", action="store_true", help="close to 0 instead of the members' means")
    to_mean = not parser.parse_args().close_to_zero
    data = load_data("sklearn:digits")
    cells = {}
    print(f"{'model':<16} {'method':<11} {'score':<8} specific  vs random  median drop: class k / other / random")
    for name, model in models(data):
        started = time.perf_counter()
        a = analyze(
            model, data.X, data.y, name="bench-chains", **data.analyze_kwargs, chain_draws=0, close_to_mean=to_mean
        )
        for score in SCORES:
            measure_chains(ClassScores(model, ""), data.X, a, score=score, to_mean=to_mean)
            for method in a.methods:
                found = [c.props for c in a.communities if c.method == method and "chain_drop" in c.props]
                specific = sum(f["chain_specificity"] >= 3 for f in found)
                beats = sum(f["chain_vs_random"] >= 3 for f in found)
                cells[(name, method, score)] = (specific, beats)
                keys = ("chain_drop", "chain_other_drop", "chain_random_drop")
                drops = [np.median([f[key] for f in found]) for key in keys]
                print(
                    f"{name:<16} {method:<11} {score:<8} {specific:>2}/{len(found):<6} {beats:>2}/{len(found):<6}  "
                    + " / ".join(f"{d:.3f}" for d in drops)
                )
        print(f"  ({name}: {time.perf_counter() - started:.0f} s)")
    default = [cells[key] for key in cells if key[2] == DEFAULT_SCORE and key[1] == "innersight"]
    print(
        f"chains: default_specific={sum(s for s, _ in default)}/{10 * len(default)} "
        f"default_vs_random={sum(b for _, b in default)}/{10 * len(default)} "
        + " ".join(f"{score}_specific={sum(v[0] for k, v in cells.items() if k[2] == score)}" for score in SCORES)
    )


if __name__ == "__main__":
    main()
