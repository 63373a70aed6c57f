"""Offline concept labels: what a community does and what it responds to, from the probe set alone.

For each community: its top-activating samples (by the mean activation of its members), the class
distribution among them, its top input features by path flow into its members, and for image data
the prototype (mean input of the top samples). Its label says what it is, from what was measured:

- an input community: its features (`12 inputs, upper-left` for images, `3 inputs: alcohol, ...`, `all 64 inputs`);
- an output community: its class (`class 3 output`);
- a hidden community: the class it was made for (relay modules, NeurFlow groups), what closing it
  does (`closing costs class 3 0.667, others at most 0.0521`, `closing costs classes 3 0.4, 5 0.2`,
  `closing costs no class`), the class its top samples mostly belong to, and where its inflow comes
  from (the region of its top pixels, or its top features): e.g. `made for class 3; closing costs
  class 3 0.667, others at most 0.0521; top samples 50% class 2; inflow from upper-left pixels`.
  A community whose neurons are all constant on the probe set is `inactive`.

Numbers have three significant digits; accuracy is a fraction (0..1).
"""

import numpy as np

from neurocypher.queries.schema import ROLE_THRESHOLD

from .flow import path_flow

TOP_SAMPLES, TOP_FEATURES = 20, 5
SPECIFIC = 3.0  # closing is specific to a class when it costs it this many times the most another class loses
LISTED = 3  # classes named when closing costs several


def label_communities(
    a, X_flat: np.ndarray, image_shape: tuple[int, int] | None, feature_names: list[str] | None
) -> None:
    """Fill each community's concept properties in `a.communities`."""
    inflow = {layer: path_flow(a.flows, a.widths, 0, layer) for layer in {c.layer for c in a.communities} if layer > 0}
    last = len(a.layers) - 1
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
        where = _where(features, image_shape, feature_names)
        if c.layer == 0:
            label = _inputs(c.size, layer.width, where, image_shape)
        elif c.layer == last:
            label = f"class {a.class_names[c.props.get('class', c.index)]} output"
        elif layer.constant[c.members].all():
            label = "inactive: its neurons are constant on the probe set"
        else:
            label = _hidden(c.props, distribution, where, image_shape, a.class_names)
        c.props.update(
            top_samples=top.tolist(), class_distribution=distribution.tolist(), top_features=features, label=label
        )
        if image_shape:
            c.props["prototype"] = X_flat[top].mean(axis=0).tolist()


def _inputs(size: int, width: int, where: str, image_shape: tuple[int, int] | None) -> str:
    """An input community's label: how many features and which."""
    if size == width:
        return f"all {width} inputs"
    if not where:
        return f"{size} inputs"
    return f"{size} inputs, {where}" if image_shape else f"{size} inputs: {where}"


def _hidden(props: dict, distribution: np.ndarray, where: str, image_shape, class_names: list[str]) -> str:
    """A hidden community's label: the class it was made for, what closing it costs, the class of
    its top samples, where its inflow comes from."""
    parts = [] if props.get("class") is None else [f"made for class {class_names[props['class']]}"]
    if props.get("class_acc_drop") is not None:
        parts.append(closing_text(np.asarray(props["class_acc_drop"], dtype=float), class_names))
    dominant = int(distribution.argmax())
    parts.append(f"top samples {distribution[dominant]:.0%} class {class_names[dominant]}")
    if where:
        parts.append(f"inflow from {where} pixels" if image_shape else f"inflow from {where}")
    return "; ".join(parts)


def closing_text(drops: np.ndarray, class_names: list[str]) -> str:
    """What closing a community costs each class (`drops`: accuracy lost per class, 0..1), in words:
    the one class it costs (and the most any other loses), the classes it costs, or none."""
    order = np.argsort(-drops, kind="stable")
    k, others = order[0], max(0.0, float(drops[order[1]])) if len(drops) > 1 else 0.0
    if drops[k] <= ROLE_THRESHOLD:
        return "closing costs no class"
    if drops[k] >= SPECIFIC * max(others, ROLE_THRESHOLD):
        return f"closing costs class {class_names[k]} {drops[k]:.3g}, others at most {others:.3g}"
    hurt = [j for j in order if drops[j] > ROLE_THRESHOLD]
    listed = ", ".join(f"{class_names[j]} {drops[j]:.3g}" for j in hurt[:LISTED])
    return f"closing costs classes {listed}" + (f" and {len(hurt) - LISTED} more" if len(hurt) > LISTED else "")


def _where(features: list[int], image_shape: tuple[int, int] | None, feature_names: list[str] | None) -> str:
    """Where the top features lie: an image region (`upper-left`), or the first three features' names."""
    if image_shape:
        return _region(features, image_shape)
    return ", ".join(feature_names[f] if feature_names else f"x{f}" for f in features[:3])


def _region(features: list[int], shape: tuple[int, int]) -> str:
    """Where in the image the features lie, e.g. "upper-left"."""
    if not features:
        return ""
    height, width = shape
    rows, cols = np.divmod(np.asarray(features) % (height * width), width)
    vertical = ("upper", "middle", "lower")[min(2, int(3 * rows.mean() / height))]
    horizontal = ("left", "center", "right")[min(2, int(3 * cols.mean() / width))]
    return "center" if (vertical, horizontal) == ("middle", "center") else f"{vertical}-{horizontal}"
