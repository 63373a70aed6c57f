"""A short text summary of an analysis, printed by `ingest` and `demo`."""

from collections import Counter

import numpy as np

from neurocypher.queries.chains import FAITHFUL_RATIO

from .analysis import Analysis


def summary(a: Analysis) -> str:
    widths = " -> ".join(f"{layer.name}[{layer.width}]" for layer in a.layers)
    edges = sum(len(f.source) for f in a.flows)
    lines = [
        f"{a.name}: {a.arch}; accuracy {a.accuracy:.3f} on {len(a.labels)} samples; "
        f"{sum(a.widths)} neurons ({widths}), {edges} flow edges"
    ]
    lines += dag_lines(a)
    m = a.metrics
    if "deletion_auc_attribution" in m:
        lines.append(
            f"  deletion check (area under accuracy, lower = faster loss): attribution order "
            f"{m['deletion_auc_attribution']:.3f}, random order {m['deletion_auc_random']:.3f}, "
            f"on {m['deletion_samples']} samples"
        )
    for method in a.methods:
        found = [c for c in a.communities if c.method == method]
        per_layer = Counter(c.layer for c in found)
        roles = Counter(c.props["role"] for c in found)
        lines.append(
            f"  {method}: communities per layer "
            + "/".join(str(per_layer[lay.index]) for lay in a.layers)
            + f"; {roles['key']} key, {roles['noise']} noise, {roles['irrelevant']} irrelevant; "
            + (f"accuracy with noise closed {m[f'prune_accuracy_{method}']:.3f}" if found else "")
        )
    if "fidelity_ratio" in m:
        lines.append(
            f"  NeurFlow fidelity: class retention {np.mean(m['fidelity_core']):.3f} with each class's core "
            f"neurons of the top hidden layer zeroed, {np.mean(m['fidelity_random']):.3f} with as many "
            f"random ones; retention lost, core / random: {m['fidelity_ratio']:.1f}x"
        )
        lines += fidelity_table(a)
    lines += chain_lines(a)
    if "relay_knockout_rho" in m:
        lines.append(
            f"  knockout check: Spearman rho between relay bits and accuracy lost on closing, over "
            f"community x class: {m['relay_knockout_rho']:.2f}"
        )
    for method, why in a.skipped.items():
        lines.append(f"  {method}: skipped ({why})")
    lines.append(
        "  stage times: " + ", ".join(f"{stage} {seconds:.1f} s" for stage, seconds in a.stage_seconds.items())
    )
    return "\n".join(lines)


def chain_lines(a: Analysis) -> list[str]:
    """Per method, how many classes' top relay-path chains survive the causal check (`ingest.fidelity`)."""
    m = a.metrics
    measured = [method for method in a.methods if f"chain_specificity_{method}" in m]
    if not measured:
        return []
    return [
        f"  chain fidelity (closing each class's top relay-path chain: class k loses >= {FAITHFUL_RATIO:g}x "
        "what the most-hurt other class loses / >= that many times random chains of the same sizes), "
        "share of classes: "
        + ", ".join(
            f"{method} {m[f'chain_specificity_{method}']:.0%} / {m[f'chain_vs_random_{method}']:.0%}"
            for method in measured
        )
    ]


TOKEN_WORDS = {"mean": "mean over tokens", "max": "max over tokens", "first": "first step", "last": "last step"}


def dag_lines(a: Analysis) -> list[str]:
    """The layer DAG as read: each layer's index, name, kind, width, what it is read after, and the
    layers that feed it."""
    lines = ["  layers (read after; fed by):"]
    if a.notes.get("tokens_embedded_at") is not None:
        at = a.notes["tokens_embedded_at"]
        lines.append(
            f"    L0 input: {a.layers[0].width} tokens that occur in the data, each counted per sample"
            + (f"; embedded at {at}" if at else "")
        )
    for layer in a.layers[1 if a.notes.get("tokens_embedded_at") is not None else 0 :]:
        read = f"after {layer.activation}" if layer.activation else f"at {layer.point}" if layer.point else ""
        fed = ", ".join(f"L{i}" for i in layer.inputs)
        lines.append(
            f"    L{layer.index} {layer.name}: {layer.kind} {layer.width}"
            + (f", {read}" if read else "")
            + (f", {TOKEN_WORDS[layer.layout.reduce]}" if layer.layout.reduce else "")
            + (f"; fed by {fed}" if fed else "")
        )
    if a.notes.get("logits"):
        lines.append(
            f"    the class scores are item {a.notes['logits']!r} of the model's output (read without --logits)"
        )
    if a.notes.get("left_out_layers"):
        lines.append("    left out (they do not lead to the class scores): " + ", ".join(a.notes["left_out_layers"]))
    if a.notes.get("classes_without_samples"):
        lines.append(
            "  classes without samples in the data (their per-class numbers are empty): "
            + ", ".join(a.class_names[c] for c in a.notes["classes_without_samples"])
        )
    return lines


def fidelity_table(a: Analysis) -> list[str]:
    """NeurFlow's fidelity per layer (top hidden layer first) and tau: mean class retention with the
    class's core neurons zeroed / with as many random neurons zeroed."""
    rows = [
        (a.layers[layer].name, props)
        for layer, props in sorted(a.layer_props.items(), reverse=True)
        if "fidelity_tau" in props
    ]
    if not rows:
        return []
    taus = rows[0][1]["fidelity_tau"]
    lines = ["    retention core / random   " + "  ".join(f"tau {t:<9}" for t in taus)]
    for name, props in rows:
        lines.append(
            f"    {name:<25} "
            + "  ".join(f"{o:.2f} / {r:.2f}  " for o, r in zip(props["fidelity_core"], props["fidelity_random"]))
        )
    return lines
