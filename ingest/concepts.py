"""Offline concept labels: what a community responds to, from the probe set alone.

For each community: its top-activating samples (by the mean activation of its members), the class
distribution among them, its top input features by path flow into its members, and for image data
the prototype (mean input of the top samples). The label reads e.g. "class 3 (82%), upper-left".
"""

import numpy as np

from .flow import path_flow

TOP_SAMPLES, TOP_FEATURES = 20, 5


def label_communities(
    a, X_flat: np.ndarray, image_shape: tuple[int, int] | None, feature_names: list[str] | None
) -> None:
    """Fill each community's concept properties in `a.communities`."""
    inflow = {layer: path_flow(a.flows, a.widths, 0, layer) for layer in {c.layer for c in a.communities} if layer > 0}
    for c in a.communities:
        layer = a.layers[c.layer]
        score = layer.acts[:, c.members].mean(axis=1)
        top = np.argsort(-score, kind="stable")[:TOP_SAMPLES]
        distribution = np.bincount(a.labels[top], minlength=a.n_classes) / len(top)
        if c.layer == 0:
            weight = np.zeros(layer.width)
            weight[c.members] = 1.0
        else:
            weight = inflow[c.layer][:, c.members].sum(axis=1)
        features = [int(f) for f in np.argsort(-weight, kind="stable")[:TOP_FEATURES] if weight[f] > 0]
        dominant = int(distribution.argmax())
        where = (
            _region(features, image_shape)
            if image_shape
            else ", ".join(feature_names[f] if feature_names else f"x{f}" for f in features[:3])
        )
        c.props.update(
            top_samples=top.tolist(),
            class_distribution=distribution.tolist(),
            top_features=features,
            label=f"class {a.class_names[dominant]} ({distribution[dominant]:.0%})" + (f", {where}" if where else ""),
        )
        if image_shape:
            c.props["prototype"] = X_flat[top].mean(axis=0).tolist()


def _region(features: list[int], shape: tuple[int, int]) -> str:
    """Where in the image the features lie, e.g. "upper-left"."""
    if not features:
        return ""
    height, width = shape
    rows, cols = np.divmod(np.asarray(features) % (height * width), width)
    vertical = ("upper", "middle", "lower")[min(2, int(3 * rows.mean() / height))]
    horizontal = ("left", "center", "right")[min(2, int(3 * cols.mean() / width))]
    return "center" if (vertical, horizontal) == ("middle", "center") else f"{vertical}-{horizontal}"
