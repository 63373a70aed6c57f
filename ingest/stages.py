"""The stages of an analysis, run in order by `ingest.analyze` (`ingest.pipeline`). Each stage is a
function of the `Run`; its docstring says what it needs and what it adds. Each stage's wall time is
kept in `Analysis.stage_seconds`. The community methods read a `MethodContext`, not the run.
"""

import time
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import spearmanr
from torch import nn

from neurocypher.errors import UserError
from neurocypher.progress import progress_bar

from .analysis import Analysis
from .closing import evaluate_closing
from .communities import Community, community_flows, specificity
from .concepts import label_communities
from .context import BinarizedLayers, MethodContext
from .deletion import deletion_check, stratified_subset
from .fidelity import measure_chains
from .flow import betweenness, layer_flow, path_flow, shared, weight_coupling
from .information import discretize, entropy_bits
from .layers import Layer
from .methods import METHODS
from .neuronize import ClassScores, Recording, record
from .options import AnalysisOptions
from .relay import class_indicators, set_relay_bits
from .segments import PROBE_ROWS, Plans
from .taps import Layout, device_of, rows
from .tokens import Tokens


@dataclass
class Run:
    """One analysis under way: the model, the probe set and what the stages made (the analysis,
    which holds the options)."""

    model: nn.Module  # wrapped by the record stage to return the class scores (`neuronize.ClassScores`)
    X: np.ndarray  # the samples as the model takes them (token data: packed ids and mask, `ingest.tokens`)
    y: np.ndarray
    analysis: Analysis
    tokens: Tokens | None = None  # token data: its input neurons
    recording: Recording | None = None
    plans: Plans | None = None  # how the model runs between its layers (`ingest.segments`), from the record stage
    binary: BinarizedLayers = field(init=False)  # the layers binarised for relay information, once each

    def __post_init__(self):
        self.binary = BinarizedLayers(self.analysis.layers, self.options.binarization)

    @property
    def options(self) -> AnalysisOptions:
        return self.analysis.options

    @property
    def device(self):
        return device_of(self.model)


def record_stage(run: Run) -> None:
    """Needs the model and X. Adds the recording (the layer DAG and the activations of every hidden
    layer), the predictions, the class names (checked against the model's outputs) and the model's
    execution plans (checked on the first PROBE_ROWS rows of X; all the whole model's with `--no-shortcuts`)."""
    a, options = run.analysis, run.options
    run.model = ClassScores(run.model, options.logits, run.tokens)
    probe = rows(run.X, 0, min(PROBE_ROWS, options.batch_size), run.device)
    run.plans = Plans(run.model, probe, options.shortcuts)
    run.recording = rec = record(
        run.model,
        run.X,
        layers=options.layers,
        batch_size=options.batch_size,
        token_reduce=options.token_reduce,
        memory_budget=options.memory_bytes(),
    )
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
    if run.model.logits != options.logits:
        a.notes["logits"] = run.model.logits  # read at item `logits` of the model's output without being told
    if run.tokens is not None:
        a.notes["tokens_embedded_at"] = str(run.tokens.embedding or "")
    if rec.left_out:
        a.notes["left_out_layers"] = rec.left_out
    missing = [c for c in range(n_classes) if not (run.y == c).any()]
    if missing:
        a.notes["classes_without_samples"] = missing


def layer_stage(run: Run) -> None:
    """Needs the recording. Adds the layers (input, each hidden layer, output) with the layers that
    feed them, their codes, entropies and class-conditional means."""
    a, rec = run.analysis, run.recording
    flat = Layout()
    stacks = (
        [("input", "", "", None, flat, (), "input", "", rec.inputs)]
        + [
            (tap.name, tap.path, tap.module, tap.point, tap.layout, tap.inputs, tap.kind, tap.activation, acts)
            for tap, acts in zip(rec.taps, rec.hidden)
        ]
        + [("output", "", rec.output_module, None, flat, rec.output_inputs, "output", "", rec.outputs)]
    )
    onehot = np.eye(a.n_classes, dtype=np.float64)[run.y]
    support = np.maximum(onehot.sum(axis=0), 1)[:, None]
    bins = run.options.bins
    for index, (name, path, module, point, layout, inputs, kind, activation, acts) in enumerate(stacks):
        codes = discretize(acts, bins)
        a.layers.append(
            Layer(
                index=index,
                name=name,
                path=path,
                module=module,
                point=point,
                layout=layout,
                inputs=inputs,
                kind=kind,
                activation=activation,
                acts=acts,
                codes=codes,
                entropy=entropy_bits(codes, bins),
                class_means=(onehot.T @ acts) / support,
            )
        )
    a.arch = f"{type(run.model.model).__name__}(" + ", ".join(f"{lay.kind} {lay.width}" for lay in a.layers) + ")"


def flow_stage(run: Run) -> None:
    """Needs the layers. Adds the kept flow edges along every edge of the layer DAG (NIF), each
    neuron's betweenness, and the input-to-class attribution."""
    a, options = run.analysis, run.options
    modules = dict(run.model.named_modules())
    coupled, flows = [], []
    with progress_bar(len(a.feeds), "information flow") as advance:
        for lower_index, upper_index in a.feeds:
            lower, upper = a.layers[lower_index], a.layers[upper_index]
            coupling = None
            if options.weight_coupled and upper.module and len(upper.inputs) == 1:
                coupling = weight_coupling(modules[upper.module], lower.width)
                if coupling is not None:
                    coupled.append(upper.index)
            flows.append(
                layer_flow(
                    lower.index,
                    upper.index,
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
    a.flows = shared(flows)
    a.notes["weight_coupled_layers"] = coupled
    for layer, values in zip(a.layers, betweenness(a.flows, a.widths)):
        layer.props["betweenness"] = values
    a.attribution = path_flow(a.flows, a.widths, 0, len(a.layers) - 1).T


def deletion_stage(run: Run) -> None:
    """Needs the attribution. Adds the deletion check's areas and the samples it ran on (metrics:
    a stratified subset of `deletion_samples`), unless switched off."""
    a, options = run.analysis, run.options
    if options.deletion:
        rows = stratified_subset(run.y, options.deletion_samples)
        a.metrics.update(
            deletion_check(
                run.model, run.X[rows], run.y[rows], a.predictions[rows], a.attribution, batch_size=options.batch_size
            )
        )
        a.metrics["deletion_samples"] = len(rows)


def community_stage(run: Run) -> None:
    """Needs the layers and flows. Runs every chosen community method (`ingest.methods`) and adds
    its communities, soft memberships, neuron properties, link properties and metrics; a method
    that finds nothing is recorded in `skipped`. Each method's wall time is kept too ("method NAME")."""
    a = run.analysis
    context = MethodContext.of(a, run.plans, run.X, run.binary)
    for name in run.options.methods:
        started = time.perf_counter()
        found = METHODS[name].find(context, run.options.of(name))
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
            bits = set_relay_bits(run.binary[c.layer], c.members, x_in, x_out, max_states=states)
            c.props["relay_bits"] = bits
            c.props["relay_specificity"] = specificity(bits)
            advance()


def community_flow_stage(run: Run) -> None:
    """Needs the communities and flows. Adds the flow between communities of connected layers (one
    method at a time) and the methods' link properties on those links (e.g. NeurFlow's circuit
    weight), adding the links that carry such a property but no member flow."""
    a = run.analysis
    a.community_flows = community_flows(a.communities, a.flows, a.widths)
    for (method, prop), values in a.link_props.items():
        for f in [f for f in a.community_flows if f.method == method]:
            f.attach(
                prop, {(i, j): v for (lower, upper, i, j), v in values.items() if (lower, upper) == (f.lower, f.upper)}
            )


def closing_stage(run: Run) -> None:
    """Needs the communities. Adds each community's accuracy drop when closed (overall and per
    class), its role, and the accuracy with each method's noise communities closed (metrics)."""
    a, options = run.analysis, run.options
    a.metrics.update(
        evaluate_closing(
            run.plans,
            run.X,
            run.y,
            a.layers,
            a.communities,
            to_mean=options.close_to_mean,
            pairs=options.close_pairs,
            batch_size=options.batch_size,
        )
    )


def chain_fidelity_stage(run: Run) -> None:
    """Needs the closing and community flows. Adds the causal check of each method's top relay-path
    chain for each class (`ingest.fidelity`): on the class's output community, the accuracy each
    class loses when the chain is closed against random chains of the same sizes; on the Model, per
    method, the share of classes whose chain is specific and beats chance (metrics). Skipped with
    `chain_draws` 0."""
    options = run.options
    if options.chain_draws:
        run.analysis.metrics.update(
            measure_chains(
                run.model,
                run.X,
                run.analysis,
                draws=options.chain_draws,
                to_mean=options.close_to_mean,
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


TOP_INPUTS = 10  # named members an input community keeps (`top_inputs`)


def label_stage(run: Run) -> None:
    """Needs the communities and flows. Adds each community's concept label, top samples and
    features (and prototype image for image data), and for named input features (tokens) each
    input community's `top_inputs`: its TOP_INPUTS members of most path flow to the classes."""
    a = run.analysis
    label_communities(a, run.recording.inputs, a.image_shape, a.feature_names)
    if a.feature_names and a.attribution is not None:
        strength = a.attribution.sum(axis=0)
        for c in a.communities:
            if c.layer == 0:
                strongest = c.members[np.argsort(-strength[c.members], kind="stable")[:TOP_INPUTS]]
                c.props["top_inputs"] = [a.feature_names[i] for i in strongest]


STAGES = (
    ("record", record_stage),
    ("layer statistics", layer_stage),
    ("flow", flow_stage),
    ("deletion", deletion_stage),
    ("communities", community_stage),
    ("relay information", relay_information_stage),
    ("community flow", community_flow_stage),
    ("closing", closing_stage),
    ("chain fidelity", chain_fidelity_stage),
    ("knockout", knockout_stage),
    ("labels", label_stage),
)
COMMUNITY_STAGES = {"relay information", "community flow", "closing", "chain fidelity", "knockout", "labels"}


def run_stages(run: Run) -> Analysis:
    """Run every stage in order, timing each, under one progress bar that names the stage (the
    stages' own bars show under it); the stages after the communities run only when some community
    was found."""
    with progress_bar(len(STAGES), f"analysing {run.analysis.name}") as advance:
        for name, stage in STAGES:
            advance(0, name)
            if not (name in COMMUNITY_STAGES and not run.analysis.communities):
                started = time.perf_counter()
                stage(run)
                run.analysis.stage_seconds[name] = time.perf_counter() - started
            advance()
    return run.analysis
