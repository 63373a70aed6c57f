"""Random analyses of a chosen size (no model, no data) and synthetic labelled data, for the benchmarks
and the reliability tests."""

import numpy as np

from .analysis import Analysis
from .communities import Community, community_flows, specificity
from .flow import Flow
from .layers import Layer
from .taps import Layout


def synthetic_analysis(
    name: str,
    *,
    layers: int,
    width: int,
    edges: int,
    communities: int = 0,
    classes: int = 10,
    samples: int = 16,
    skip: int = 0,
    seed: int = 0,
) -> Analysis:
    """`layers` layers of `width` neurons, at least `edges` flow edges in all (distinct random pairs,
    as many along each edge of the layer DAG), and `communities` innersight communities per layer (neuron i in
    community i % communities): each class is relayed strongly (0.2..0.5 bits) by 2 of a layer's
    communities and weakly (below 0.1) by the others; community c of the last layer is class c's output.
    Each layer is fed by the one below it and, with `skip`, every `skip`-th layer also by the layer
    `skip` below (a residual skip)."""
    rng = np.random.default_rng(seed)
    inputs = [
        () if i == 0 else (i - 1,) + ((i - skip,) if skip > 1 and i >= skip and i % skip == 0 else ())
        for i in range(layers)
    ]
    labels = rng.integers(0, classes, samples)
    stack = [
        Layer(
            index=i,
            name=f"layer{i}",
            module="",
            point=None,
            layout=Layout(),
            inputs=inputs[i],
            kind="linear",
            activation="",
            acts=rng.random((samples, width), dtype=np.float32),
            codes=np.zeros((samples, width), np.uint8),
            entropy=rng.random(width),
            class_means=rng.random((classes, width)),
        )
        for i in range(layers)
    ]
    feeds = [(lower, upper) for upper in range(layers) for lower in inputs[upper]]
    per_pair = edges // len(feeds) + 1
    flows = []
    for lower, upper in feeds:
        pairs = np.sort(rng.choice(width * width, min(per_pair, width * width), replace=False))
        bits = rng.random(len(pairs))
        flows.append(Flow(lower, upper, pairs // width, pairs % width, bits, bits / 10, 0.01, (width, width)))
    a = Analysis(
        name=name,
        arch="synthetic",
        dataset="random",
        class_names=[str(c) for c in range(classes)],
        labels=labels,
        predictions=labels,
        layers=stack,
        flows=flows,
    )
    if communities:
        strong = rng.random((layers, communities, classes)).argsort(axis=1) < 2
        bits = np.where(strong, rng.uniform(0.2, 0.5, strong.shape), rng.uniform(0, 0.1, strong.shape))
        drops = rng.uniform(0, 0.1, (layers, communities, classes))
        a.communities = [
            Community(
                "innersight",
                layer,
                c,
                np.arange(c, width, communities),
                {
                    "relay_bits": bits[layer, c],
                    "relay_specificity": specificity(bits[layer, c]),
                    "class_acc_drop": drops[layer, c],
                    "closing_specificity": specificity(drops[layer, c]),
                    "role": "key",
                    "label": f"community {c}",
                }
                | ({"class": c} if layer == layers - 1 else {}),
            )
            for layer in range(layers)
            for c in range(communities)
        ]
        a.community_flows = community_flows(a.communities, flows, [width] * layers)
        a.methods = ["innersight"]
    return a


def gaussian_classes(
    samples: int, features: int = 64, classes: int = 10, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Labelled samples of `classes` Gaussian classes in `features` dimensions whose centres overlap
    (centres N(0, 1), spread 1.5), so that an MLP learns them imperfectly: float32 X, int64 y."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(0, 1, (classes, features))
    y = rng.integers(0, classes, samples)
    return (centres[y] + rng.normal(0, 1.5, (samples, features))).astype(np.float32), y
