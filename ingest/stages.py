"""The stages of an analysis, run in order by `ingest.analyze`. Each stage is a function of the
`Run`; its docstring says what it needs and what it adds. Each stage's wall time is kept in
`Analysis.stage_seconds`.
"""

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr
from torch import nn

from queries.errors import UserError

from .analysis import Analysis, Layer
from .closing import evaluate_closing
from .communities import Community, community_flows
from .concepts import label_communities
from .deletion import deletion_check
from .flow import betweenness, layer_flow, path_flow, weight_coupling
from .information import discretize, entropy_bits
from .methods import METHODS
from .neuronize import Recording, record
from .options import Options
from .progress import progress_bar
from .relay import binarize, class_indicators, set_relay_bits
from .taps import device_of


@dataclass
class Run:
    """One analysis under way: the model, the probe set, the options and what the stages made."""

    model: nn.Module
    X: np.ndarray
    y: np.ndarray
    options: Options
    analysis: Analysis
    recording: Recording | None = None
    _binary: dict[int, np.ndarray] = field(default_factory=dict)

    @property
    def device(self):
        return device_of(self.model)

    def binary(self, layer: int) -> np.ndarray:
        """The layer's neurons binarised for relay information (N x width booleans), computed once."""
        if layer not in self._binary:
            self._binary[layer] = binarize(self.analysis.layers[layer].acts, self.options.binarization)
        return self._binary[layer]


def record_stage(run: Run) -> None:
    """Needs the model and X. Adds the recording (activations of every tap), the predictions and the
    class names (checked against the model's outputs)."""
    a = run.analysis
    run.recording = rec = record(run.model, run.X, layers=list(run.options.layers), batch_size=run.options.batch_size)
    n_classes = rec.outputs.shape[1]
    if a.class_names is None:
        a.class_names = [str(c) for c in range(n_classes)]
    if len(a.class_names) != n_classes:
        raise UserError(f"the data names {len(a.class_names)} classes but the model outputs {n_classes}")
    if run.y.min() < 0 or run.y.max() >= n_classes:
        raise UserError(
            f"labels must be integers in 0..{n_classes - 1} (the model outputs {n_classes} "
            f"classes), found {int(run.y.min())}..{int(run.y.max())}"
        )
    a.predictions = rec.outputs.argmax(axis=1)
    a.notes["layers"] = [tap.module for tap in rec.taps]


def layer_stage(run: Run) -> None:
    """Needs the recording. Adds the layers (input, each tap, output) with their codes, entropies and
    class-conditional means."""
    a, rec = run.analysis, run.recording
    stacks = (
        [("input", "", "", 0, "input", "", rec.inputs)]
        + [
            (tap.name, tap.name, tap.module, tap.call, tap.kind, tap.activation, acts)
            for tap, acts in zip(rec.taps, rec.hidden)
        ]
        + [("output", rec.output_module, "", 0, "output", "", rec.outputs)]
    )
    onehot = np.eye(a.n_classes, dtype=np.float64)[run.y]
    support = np.maximum(onehot.sum(axis=0), 1)[:, None]
    bins = run.options.bins
    for index, (name, module, tap, call, kind, activation, acts) in enumerate(stacks):
        codes = discretize(acts, bins)
        a.layers.append(
            Layer(
                index=index,
                name=name,
                module=module,
                tap=tap,
                tap_call=call,
                kind=kind,
                activation=activation,
                acts=acts,
                codes=codes,
                entropy=entropy_bits(codes, bins),
                class_means=(onehot.T @ acts) / support,
            )
        )
    a.arch = f"{type(run.model).__name__}(" + ", ".join(f"{lay.kind} {lay.width}" for lay in a.layers) + ")"


def flow_stage(run: Run) -> None:
    """Needs the layers. Adds the kept flow edges between adjacent layers (NIF), each neuron's
    betweenness, and the input-to-class attribution."""
    a, options = run.analysis, run.options
    modules = dict(run.model.named_modules())
    coupled = []
    with progress_bar(len(a.layers) - 1, "information flow") as advance:
        for lower, upper in zip(a.layers, a.layers[1:]):
            coupling = None
            if options.weight_coupled and upper.module:
                coupling = weight_coupling(modules[upper.module], lower.width)
                if coupling is not None:
                    coupled.append(upper.index)
            a.flows.append(
                layer_flow(
                    lower.index,
                    lower.codes,
                    upper.codes,
                    lower.constant,
                    upper.constant,
                    bins=options.bins,
                    top_k=options.top_k,
                    coupling=coupling,
                    device=run.device,
                )
            )
            advance()
    a.notes["weight_coupled_layers"] = coupled
    for layer, values in zip(a.layers, betweenness(a.flows, a.widths)):
        layer.props["betweenness"] = values
    a.attribution = path_flow(a.flows, 0, len(a.layers) - 1).T


def deletion_stage(run: Run) -> None:
    """Needs the attribution. Adds the deletion check's areas (metrics), unless switched off."""
    a = run.analysis
    if run.options.deletion:
        a.metrics.update(
            deletion_check(run.model, run.X, run.y, a.predictions, a.attribution, batch_size=run.options.batch_size)
        )


def community_stage(run: Run) -> None:
    """Needs the layers and flows. Runs every chosen community method (`ingest.methods`) and adds
    its communities, soft memberships, neuron properties, link properties and metrics; a method
    that finds nothing is recorded in `skipped`. Each method's wall time is kept too ("method NAME")."""
    a = run.analysis
    for name in run.options.methods:
        started = time.perf_counter()
        found = METHODS[name].find(run, run.options.of(name))
        a.stage_seconds[f"method {name}"] = time.perf_counter() - started
        if found.skipped:
            a.skipped[name] = found.skipped
            continue
        a.methods.append(name)
        a.memberships += [m for m in found.memberships if m.layer < len(a.layers) - 1]  # see with_ends
        a.communities += with_ends(name, found.all_communities(), a.layers)
        for layer, props in found.neuron_props.items():
            a.layers[layer].props.update(props)
        for layer, props in found.layer_props.items():
            a.layer_props.setdefault(layer, {}).update(props)
        for prop, values in found.link_props.items():
            a.link_props[(name, prop)] = values
        a.metrics.update(found.metrics)


def with_ends(method: str, communities: list[Community], layers: list[Layer]) -> list[Community]:
    """A method's communities with the ends every chain needs: the output layer is one community per
    class (property `class`), and a method without input communities gets one of all input
    features."""
    last = len(layers) - 1
    inputs = [c for c in communities if c.layer == 0] or [Community(method, 0, 0, np.arange(layers[0].width))]
    hidden = [c for c in communities if 0 < c.layer < last]
    outputs = [c for c in communities if c.layer == last]
    if [c.members.tolist() for c in outputs] != [[k] for k in range(layers[last].width)]:
        outputs = [Community(method, last, k, np.array([k])) for k in range(layers[last].width)]
    for c in outputs:
        c.props["class"] = c.index
    return inputs + hidden + outputs


def relay_information_stage(run: Run) -> None:
    """Needs the communities. Adds every community's relay information for every class
    (`relay_bits`: I_R of its members conditional on the rest of its layer, Hintze & Adami) and
    their class specificity (`relay_specificity`: the class's bits minus the most any other class
    gets)."""
    a = run.analysis
    x_in, x_out = class_indicators(a.labels, a.predictions, a.n_classes)
    states = run.options.relay_states or None
    with progress_bar(len(a.communities), "relay information") as advance:
        for c in a.communities:
            bits = set_relay_bits(run.binary(c.layer), c.members, x_in, x_out, max_states=states)
            c.props["relay_bits"] = bits
            c.props["relay_specificity"] = specificity(bits)
            advance()


def specificity(bits: np.ndarray) -> np.ndarray:
    """Per class k: bits[k] - max over the other classes of bits (the first class's value for one class)."""
    if len(bits) < 2:
        return bits.copy()
    top2 = np.sort(bits)[-2:]
    others = np.where(bits == top2[1], top2[0], top2[1])
    return bits - others


def community_flow_stage(run: Run) -> None:
    """Needs the communities and flows. Adds the flow between communities of adjacent layers (one
    method at a time) and the methods' link properties on those links (e.g. NeurFlow's circuit
    weight), adding the links that carry such a property but no member flow."""
    a = run.analysis
    a.community_flows = community_flows(a.communities, a.flows, a.widths)
    for (method, prop), values in a.link_props.items():
        for f in [f for f in a.community_flows if f.method == method]:
            f.attach(prop, {(i, j): v for (lower, i, j), v in values.items() if lower == f.lower})


def closing_stage(run: Run) -> None:
    """Needs the communities. Adds each community's accuracy drop when closed (overall and per
    class), its role, and the accuracy with each method's noise communities closed (metrics)."""
    a, options = run.analysis, run.options
    a.metrics.update(
        evaluate_closing(
            run.model,
            run.X,
            run.y,
            a.layers,
            a.communities,
            to_mean=options.close_to_mean,
            pairs=options.close_pairs,
            batch_size=options.batch_size,
        )
    )


def knockout_stage(run: Run) -> None:
    """Needs relay bits and closing. Adds the Spearman rho between a community's relay bits for a
    class and the accuracy that class loses when it is closed, over community x class (metrics)."""
    communities = run.analysis.communities
    bits = np.concatenate([c.props["relay_bits"] for c in communities])
    drops = np.concatenate([c.props["class_acc_drop"] for c in communities])
    if np.ptp(bits) > 0 and np.ptp(drops) > 0:  # else rho is undefined (e.g. no closing changes anything)
        run.analysis.metrics["relay_knockout_rho"] = float(spearmanr(bits, drops).statistic)


def label_stage(run: Run) -> None:
    """Needs the communities and flows. Adds each community's concept label, top samples and
    features (and prototype image for image data)."""
    a = run.analysis
    label_communities(a, run.recording.inputs, a.image_shape, a.feature_names)


STAGES = (
    ("record", record_stage),
    ("layer statistics", layer_stage),
    ("flow", flow_stage),
    ("deletion", deletion_stage),
    ("communities", community_stage),
    ("relay information", relay_information_stage),
    ("community flow", community_flow_stage),
    ("closing", closing_stage),
    ("knockout", knockout_stage),
    ("labels", label_stage),
)
COMMUNITY_STAGES = {"relay information", "community flow", "closing", "knockout", "labels"}  # need communities


def run_stages(run: Run) -> Analysis:
    """Run every stage in order, timing each; the stages after the communities run only when some
    community was found."""
    for name, stage in STAGES:
        if name in COMMUNITY_STAGES and not run.analysis.communities:
            continue
        started = time.perf_counter()
        stage(run)
        run.analysis.stage_seconds[name] = time.perf_counter() - started
    return run.analysis
