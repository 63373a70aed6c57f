"""The graph schema, declared once: every node label, relationship type and property that
neurocypher stores, with each property's type, unit, meaning and what writes it.

What is generated from it: the check that refuses a graph holding anything undeclared
(`check_declared`, run when a `queries.graph.ModelGraph` is made, so before anything is written),
the store's indexes and constraints (`queries.schema`) and the page docs/schema.md
(`queries.schema_page`).
A community method that stores a value (a metric, a neuron, layer, community or link property)
declares it here.

A property whose name holds a placeholder (`prune_accuracy_<method>`) stands for one property per
value of it, the placeholder matching letters, digits and _. `written_by` names a stage of
`ingest.stages.STAGES` (`stage NAME`), a community method (`method NAME`) or a module of the
`neurocypher` package (`ingest.writer` is `neurocypher.ingest.writer`), several separated by ", ".
"""

import re
from dataclasses import dataclass
from functools import lru_cache
from types import GenericAlias


@dataclass(frozen=True)
class Property:
    name: str
    type: type | GenericAlias  # int, float, str, bool, or list[...] of one of them
    unit: str  # "" where none is meaningful
    meaning: str  # one line
    written_by: str
    index: str = ""  # its Neo4j index on every label is named `<label>_<index>`; "" for none

    def matches(self, name: str) -> bool:
        return name == self.name or ("<" in self.name and _placeholder_pattern(self.name).fullmatch(name) is not None)


@dataclass(frozen=True)
class NodeType:
    label: str
    key: str  # unique within a generation
    meaning: str
    properties: tuple[Property, ...]  # besides EVERY_NODE's

    def declares(self, name: str) -> bool:
        return any(p.matches(name) for p in EVERY_NODE + self.properties)


@dataclass(frozen=True)
class RelationshipType:
    type: str
    start: str  # label
    end: str  # label
    meaning: str
    written_by: str
    properties: tuple[Property, ...] = ()

    def declares(self, name: str) -> bool:
        return any(p.matches(name) for p in self.properties)

    @property
    def pattern(self) -> str:
        return f"(:{self.start})-[:{self.type}]->(:{self.end})"


@lru_cache
def _placeholder_pattern(name: str) -> re.Pattern:
    parts = re.split(r"<\w+>", name)
    return re.compile("[A-Za-z0-9_]+".join(map(re.escape, parts)))


_WRITER, _SERIES, _CHECKPOINTS, _NEO4J = "ingest.writer", "ingest.series", "ingest.checkpoints", "queries.neo4j_store"
_LAYER_STAGE, _FLOW_STAGE, _CLOSING_STAGE, _FIDELITY_STAGE, _LABEL_STAGE = (
    "stage layer statistics",
    "stage flow",
    "stage closing",
    "stage chain fidelity",
    "stage labels",
)
_ACCURACY, _SHARE, _BITS, _COUNT = "accuracy (0..1)", "share (0..1)", "bits", "count"

EVERY_NODE = (
    Property("model_id", str, "", "the id of the model (or series) the node belongs to", "queries.graph", "model"),
    Property(
        "generation",
        str,
        "",
        "the write that stored it (readers see the stored one only)",
        "queries.graph",
        "generation",
    ),
)

NODE_TYPES = {
    node.label: node
    for node in (
        NodeType(
            "Model",
            "uid",
            "An analysed model (kind `model`) or a checkpoint series (kind `series`)",
            (
                Property("uid", str, "", "the model's (or series') id", f"{_WRITER}, {_SERIES}"),
                Property("kind", str, "", "`model`, or `series` for a checkpoint series", f"{_WRITER}, {_SERIES}"),
                Property(
                    "status",
                    str,
                    "",
                    "`complete` once stored; on Neo4j `writing` (hidden), `replaced`, `dropping`",
                    f"{_WRITER}, {_SERIES}, {_NEO4J}",
                ),
                Property("name", str, "", "the model's name (its id)", _WRITER),
                Property("arch", str, "", "the model's class and its layers' kinds and widths", _LAYER_STAGE),
                Property(
                    "dataset", str, "", "where the probe data came from, e.g. `sklearn:digits`", f"{_WRITER}, {_SERIES}"
                ),
                Property("n_samples", int, _COUNT, "probe samples", f"{_WRITER}, {_SERIES}"),
                Property("n_classes", int, _COUNT, "classes (output neurons)", f"{_WRITER}, {_SERIES}"),
                Property("n_layers", int, _COUNT, "layers, the input and the output included", _WRITER),
                Property("n_neurons", int, _COUNT, "neurons of all layers", _WRITER),
                Property("layer_widths", list[int], "neurons", "each layer's width, by layer index", _WRITER),
                Property("accuracy", float, _ACCURACY, "accuracy on the probe set", _WRITER),
                Property(
                    "class_accuracy", list[float], _ACCURACY, "per class: share of its samples predicted as it", _WRITER
                ),
                Property(
                    "created_at",
                    str,
                    "ISO 8601, UTC",
                    "when the analysis (or series) was made",
                    f"{_WRITER}, {_SERIES}",
                ),
                Property(
                    "params", str, "JSON", "the options, methods run and skipped, facts found, the source", _WRITER
                ),
                Property(
                    "methods",
                    str,
                    "",
                    "the community methods that found communities, comma-separated",
                    f"{_WRITER}, {_SERIES}",
                ),
                Property("stages", str, "", "the stages and methods that ran, comma-separated, in order", _WRITER),
                Property("stage_seconds", list[float], "seconds", "wall time of each of `stages`", _WRITER),
                Property(
                    "deletion_auc_attribution",
                    float,
                    "accuracy x fraction",
                    "area under accuracy against the share of input features deleted, in attribution order",
                    "stage deletion",
                ),
                Property(
                    "deletion_auc_random",
                    float,
                    "accuracy x fraction",
                    "the same area with features deleted in random order (mean of 5 orders)",
                    "stage deletion",
                ),
                Property("deletion_samples", int, _COUNT, "samples the deletion check ran on", "stage deletion"),
                Property(
                    "prune_accuracy_<method>",
                    float,
                    _ACCURACY,
                    "accuracy with every noise community of the method closed",
                    _CLOSING_STAGE,
                ),
                Property(
                    "chain_specificity_<method>",
                    float,
                    _SHARE,
                    "share of classes whose top relay-path chain is specific when closed",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "chain_vs_random_<method>",
                    float,
                    _SHARE,
                    "share of classes whose top relay-path chain, closed, beats random chains of its sizes",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "relay_knockout_rho",
                    float,
                    "Spearman rho (-1..1)",
                    "relay bits for a class against that class's accuracy drop when closed, over community x class",
                    "stage knockout",
                ),
                Property(
                    "fidelity_core",
                    list[float],
                    "retention (0..1)",
                    "per class, top hidden layer: share of its correct samples kept with its core neurons zeroed",
                    "method neurflow",
                ),
                Property(
                    "fidelity_random",
                    list[float],
                    "retention (0..1)",
                    "the same with as many random neurons zeroed (mean of the draws)",
                    "method neurflow",
                ),
                Property(
                    "fidelity_ratio",
                    float,
                    "ratio",
                    "mean retention lost to core neurons over that lost to random ones",
                    "method neurflow",
                ),
                Property("series", str, "", "a checkpoint model: the id of its series", _CHECKPOINTS),
                Property("step", int, "training step", "a checkpoint model: its step", _CHECKPOINTS),
                Property(
                    "metric_<name>",
                    float,
                    "as trained",
                    "a checkpoint model: a training metric saved with it (other characters than A-Z a-z 0-9 _ as _)",
                    _CHECKPOINTS,
                ),
                Property("checkpoints", list[str], "", "a series: its checkpoint models' ids, in step order", _SERIES),
                Property("steps", list[int], "training step", "a series: its checkpoints' steps", _SERIES),
                Property("writer", str, "host:pid", "Neo4j: the process that wrote the generation", _NEO4J),
                Property(
                    "locked_by", str, "", "Neo4j: a write lock, set and removed in the publishing transaction", _NEO4J
                ),
            ),
        ),
        NodeType(
            "Layer",
            "uid",
            "A layer of neurons: the input, a hidden layer read in the forward pass, or the class scores",
            (
                Property("uid", str, "", "`<model>/L<index>`", _WRITER),
                Property(
                    "index", int, "", "position in dataflow order: 0 the input, the last the class scores", _LAYER_STAGE
                ),
                Property(
                    "name", str, "", "short name: the tail of `path`; `input` and `output` at the ends", _LAYER_STAGE
                ),
                Property(
                    "path", str, "", "the full module path (a merge: `CONTAINER.add`), empty at the ends", _LAYER_STAGE
                ),
                Property(
                    "kind",
                    str,
                    "",
                    "input, linear, conv, attention, recurrent, merge, module or output",
                    _LAYER_STAGE,
                ),
                Property(
                    "module", str, "", "the module's name in the model, empty for the input and a merge", _LAYER_STAGE
                ),
                Property("activation", str, "", "the activation read after the weights, empty if none", _LAYER_STAGE),
                Property(
                    "read_at",
                    str,
                    "",
                    "the module or function whose output is read (`NAME#CALL` after its first call)",
                    _LAYER_STAGE,
                ),
                Property("width", int, "neurons", "its neurons", _LAYER_STAGE),
                Property(
                    "fed_by", list[int], "layer index", "the layers that feed it (edges of the layer DAG)", _LAYER_STAGE
                ),
                Property("batch_axis", int, "axis", "the batch axis of the layer's tensor", _LAYER_STAGE),
                Property(
                    "token_reduce",
                    str,
                    "",
                    "how a feature is reduced over token or step axes, empty if none",
                    _LAYER_STAGE,
                ),
                Property("flow_edges", int, _COUNT, "kept flow edges into the layer", _FLOW_STAGE),
                Property(
                    "flow_threshold",
                    float,
                    _BITS,
                    "the most that an incoming flow edge had to beat (the null's quantile)",
                    _FLOW_STAGE,
                ),
                Property(
                    "fidelity_tau",
                    list[int],
                    "neurons",
                    "the core set sizes of NeurFlow's fidelity check",
                    "method neurflow",
                ),
                Property(
                    "fidelity_core",
                    list[float],
                    "retention (0..1)",
                    "per tau: mean over classes of the share of correct samples kept with the class's core set zeroed",
                    "method neurflow",
                ),
                Property(
                    "fidelity_random",
                    list[float],
                    "retention (0..1)",
                    "per tau: the same with as many random neurons of the layer zeroed",
                    "method neurflow",
                ),
            ),
        ),
        NodeType(
            "Neuron",
            "uid",
            "One neuron: an input feature, a hidden unit (a channel of a conv layer) or a class score",
            (
                Property("uid", str, "", "`<model>/L<layer>/<index>`", _WRITER),
                Property("layer", int, "layer index", "its layer", _WRITER),
                Property("index", int, "", "its position in its layer", _WRITER),
                Property("kind", str, "", "input, hidden or output", _WRITER),
                Property(
                    "name", str, "", "an input neuron of named features: the name (a token's string for text)", _WRITER
                ),
                Property("mean", float, "activation", "mean activation over the probe set", _WRITER),
                Property(
                    "std", float, "activation", "standard deviation of the activation over the probe set", _WRITER
                ),
                Property(
                    "entropy",
                    float,
                    _BITS,
                    "entropy of the analysis's equal-frequency bins (8 unless --bins), Miller-Madow corrected",
                    _LAYER_STAGE,
                ),
                Property(
                    "constant", bool, "", "whether its activation is the same on every probe sample", _LAYER_STAGE
                ),
                Property(
                    "class_means",
                    list[float],
                    "activation",
                    "per class: mean activation over its samples",
                    _LAYER_STAGE,
                ),
                Property(
                    "betweenness",
                    float,
                    "0..1",
                    "normalised betweenness on the flow graph, distance -log(share)",
                    _FLOW_STAGE,
                ),
                Property(
                    "core",
                    list[int],
                    "0 or 1",
                    "per class: 1 when a core neuron of the class's circuit",
                    "method neurflow",
                ),
                Property(
                    "relay_score",
                    list[float],
                    _BITS,
                    "per class: the relay information it gained while it stayed in greedy shrinking (hidden layers)",
                    "method relay",
                ),
            ),
        ),
        NodeType(
            "Class",
            "uid",
            "A class the model scores",
            (
                Property("uid", str, "", "`<model>/class/<index>`", _WRITER),
                Property("index", int, "", "the class's index (its output neuron)", _WRITER),
                Property("name", str, "", "the class's name from the data, else its index", _WRITER),
                Property("support", int, _COUNT, "probe samples of the class", _WRITER),
                Property("accuracy", float, _ACCURACY, "share of its samples predicted as it", _WRITER),
            ),
        ),
        NodeType(
            "Community",
            "uid",
            "Neurons of one layer found together by one method; in a series, a checkpoint's community",
            (
                Property("uid", str, "", "`<model>/<method>/L<layer>/c<index>`", f"{_WRITER}, {_SERIES}"),
                Property("method", str, "", "the community method that found it", f"{_WRITER}, {_SERIES}"),
                Property("layer", int, "layer index", "its layer", f"{_WRITER}, {_SERIES}"),
                Property(
                    "index",
                    int,
                    "",
                    "its position among the method's communities of the layer",
                    f"{_WRITER}, {_SERIES}",
                ),
                Property("size", int, "neurons", "its primary members", f"{_WRITER}, {_SERIES}"),
                Property(
                    "class",
                    int,
                    "class index",
                    "the class it is made for (an output community, a relay module, a NeurFlow group)",
                    "stage communities, method relay, method neurflow",
                ),
                Property(
                    "relay_bits",
                    list[float],
                    _BITS,
                    "per class: relay information of its members conditional on the rest of the layer",
                    "stage relay information",
                ),
                Property(
                    "relay_specificity",
                    list[float],
                    _BITS,
                    "per class: its relay bits minus the most any other class gets",
                    "stage relay information",
                ),
                Property("acc_drop", float, _ACCURACY, "accuracy lost when it is closed", _CLOSING_STAGE),
                Property(
                    "class_acc_drop",
                    list[float],
                    _ACCURACY,
                    "per class: accuracy lost when it is closed",
                    _CLOSING_STAGE,
                ),
                Property(
                    "closing_specificity",
                    list[float],
                    _ACCURACY,
                    "per class: what the class loses when it is closed minus the most another class loses",
                    _CLOSING_STAGE,
                ),
                Property(
                    "role",
                    str,
                    "",
                    "key, noise or irrelevant, by `acc_drop` against 0.005",
                    f"{_CLOSING_STAGE}, {_SERIES}",
                ),
                Property(
                    "pair_acc_drop",
                    list[float],
                    _ACCURACY,
                    "with close_pairs: accuracy lost when closed with each community of its method and layer",
                    _CLOSING_STAGE,
                ),
                Property("label", str, "", "its concept label, from the probe set", f"{_LABEL_STAGE}, {_SERIES}"),
                Property("top_samples", list[int], "sample index", "its 20 top-activating probe samples", _LABEL_STAGE),
                Property(
                    "class_distribution", list[float], _SHARE, "per class: share of its top samples", _LABEL_STAGE
                ),
                Property(
                    "top_features", list[int], "feature index", "its 5 top input features by path flow", _LABEL_STAGE
                ),
                Property(
                    "prototype",
                    list[float],
                    "input value",
                    "image data: the mean input of its top samples",
                    _LABEL_STAGE,
                ),
                Property(
                    "top_inputs",
                    list[str],
                    "",
                    "an input community of named features: its 10 members of most path flow to the classes",
                    _LABEL_STAGE,
                ),
                Property(
                    "chain",
                    list[str],
                    "community uid",
                    "an output community: its method's top relay-path chain",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "chain_score", str, "", "the score that ranked `chain` (`queries.chains.SCORES`)", _FIDELITY_STAGE
                ),
                Property(
                    "chain_drop", float, _ACCURACY, "accuracy its class loses with the chain closed", _FIDELITY_STAGE
                ),
                Property(
                    "chain_other_drop",
                    float,
                    _ACCURACY,
                    "the most another class loses with the chain closed",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "chain_random_drop",
                    float,
                    _ACCURACY,
                    "median accuracy its class loses with random chains of the same sizes closed",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "chain_specificity",
                    float,
                    "ratio",
                    "`chain_drop` over `chain_other_drop` (taken as at least 0.005)",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "chain_vs_random",
                    float,
                    "ratio",
                    "`chain_drop` over `chain_random_drop` (taken as at least 0.005)",
                    _FIDELITY_STAGE,
                ),
                Property(
                    "relay_order",
                    list[int],
                    "neuron index",
                    "a relay module: its layer's neurons in the order greedy shrinking removed them",
                    "method relay",
                ),
                Property(
                    "relay_curve",
                    list[float],
                    _BITS,
                    "a relay module: relay information left after each removal (first: the whole layer)",
                    "method relay",
                ),
                Property(
                    "circuit_weight",
                    list[float],
                    "IG weight",
                    "a NeurFlow group: per class, the summed absolute weight of the circuit edges into it",
                    "method neurflow",
                ),
                Property("model", str, "", "a series: the checkpoint model it belongs to", _SERIES),
                Property("step", int, "training step", "a series: its checkpoint's step", _SERIES),
                Property(
                    "chain_classes",
                    list[int],
                    "class index",
                    "a series: the classes whose top chain runs through it",
                    _SERIES,
                ),
            ),
        ),
        NodeType(
            "Checkpoint",
            "uid",
            "A series' checkpoint: a stored model of its own",
            (
                Property("uid", str, "", "`<series>/checkpoint/<step>`", _SERIES),
                Property("index", int, "", "its position in step order", _SERIES),
                Property("model", str, "", "the checkpoint model's id", _SERIES),
                Property("step", int, "training step", "its step", _SERIES),
                Property("accuracy", float, _ACCURACY, "the checkpoint model's accuracy on the probe set", _SERIES),
                Property("metric_<name>", float, "as trained", "a training metric saved with the checkpoint", _SERIES),
            ),
        ),
    )
}

RELATIONSHIP_TYPES = {
    (rel.type, rel.start, rel.end): rel
    for rel in (
        RelationshipType("HAS_LAYER", "Model", "Layer", "The model's layers", _WRITER),
        RelationshipType("HAS_CLASS", "Model", "Class", "The model's classes", _WRITER),
        RelationshipType("HAS_NEURON", "Layer", "Neuron", "The layer's neurons", _WRITER),
        RelationshipType("FEEDS", "Layer", "Layer", "An edge of the layer DAG, lower layer to upper", _WRITER),
        RelationshipType(
            "FLOWS_TO",
            "Neuron",
            "Neuron",
            "A kept information flow edge (NIF) along an edge of the layer DAG",
            _FLOW_STAGE,
            (
                Property(
                    "bits",
                    float,
                    _BITS,
                    "mutual information of the two neurons (weight-coupled: times the absolute weight)",
                    _FLOW_STAGE,
                ),
                Property("share", float, _SHARE, "`bits` over all kept bits into the upper neuron", _FLOW_STAGE),
            ),
        ),
        RelationshipType(
            "ATTRIBUTES",
            "Neuron",
            "Class",
            "An input feature among the class's 32 of most path flow to it",
            _WRITER,
            (
                Property(
                    "score", float, "path flow", "input-to-class path flow (sums of products of shares)", _FLOW_STAGE
                ),
                Property("rank", int, "", "its place among the class's features, 0 the strongest", _WRITER),
            ),
        ),
        RelationshipType(
            "MEMBER_OF",
            "Neuron",
            "Community",
            "A membership: the primary one, and each other of at least 0.1",
            "stage communities",
            (
                Property(
                    "p", float, "probability", "membership probability (1 for a hard membership)", "stage communities"
                ),
                Property("primary", int, "0 or 1", "1 for the community it belongs to most", "stage communities"),
            ),
        ),
        RelationshipType(
            "FLOWS_TO",
            "Community",
            "Community",
            "Flow between communities of one method in layers joined by a DAG edge",
            "stage community flow",
            (
                Property("bits", float, _BITS, "summed member-to-member flow", "stage community flow"),
                Property("edges", int, _COUNT, "member flow edges", "stage community flow"),
                Property(
                    "mean",
                    float,
                    _BITS,
                    "bits per member edge (0 for a link without member flow)",
                    "stage community flow",
                ),
                Property(
                    "weight", float, "IG weight", "NeurFlow: the group-to-group circuit weight", "method neurflow"
                ),
            ),
        ),
        RelationshipType(
            "RELAYS",
            "Community",
            "Class",
            "From every community to every class: the community's per-class values for that class",
            _WRITER,
            (
                Property("bits", float, _BITS, "the community's `relay_bits` for the class", "stage relay information"),
                Property(
                    "acc_drop", float, _ACCURACY, "the community's `class_acc_drop` for the class", _CLOSING_STAGE
                ),
                Property(
                    "weight",
                    float,
                    "IG weight",
                    "the community's `circuit_weight` for the class (0 without)",
                    "method neurflow",
                ),
            ),
        ),
        RelationshipType("HAS_CHECKPOINT", "Model", "Checkpoint", "The series' checkpoints", _SERIES),
        RelationshipType("NEXT", "Checkpoint", "Checkpoint", "One checkpoint to the next in step order", _SERIES),
        RelationshipType("HAS_COMMUNITY", "Checkpoint", "Community", "The checkpoint's communities", _SERIES),
        RelationshipType(
            "MATCHES",
            "Community",
            "Community",
            "A series: one community at two consecutive checkpoints; Neo4j: matched communities of two models",
            f"{_SERIES}, ingest.matching",
            (
                Property("overlap", float, "Jaccard (0..1)", "a series: shared primary members over all", _SERIES),
                Property(
                    "similarity",
                    float,
                    "Pearson r (-1..1)",
                    "correlation of the two communities' class profiles",
                    f"{_SERIES}, ingest.matching",
                ),
                Property("best", int, "0 or 1", "a series: 1 for a pair of the Hungarian community matching", _SERIES),
            ),
        ),
    )
}

RELAYS_PER_CLASS = {"bits": "relay_bits", "acc_drop": "class_acc_drop", "weight": "circuit_weight"}
"""What RELAYS of a community to class k holds: entry k of these per-class Community properties."""


def check_declared(graph) -> None:
    """Raise ValueError naming the first label, relationship type or property of `graph` (a
    `queries.graph.ModelGraph`) not declared here: a programming error."""
    for node_set in graph.nodes:
        node = NODE_TYPES.get(node_set.label)
        if node is None:
            raise _undeclared(f"node label {node_set.label!r}")
        names = set()
        for row in node_set.rows:
            names.update(row)
        for name in sorted(names):
            if not node.declares(name):
                raise _undeclared(f"{node_set.label} property {name!r}")
    for rel_set in graph.rels:
        rel = RELATIONSHIP_TYPES.get((rel_set.type, rel_set.start_label, rel_set.end_label))
        if rel is None:
            raise _undeclared(f"relationship (:{rel_set.start_label})-[:{rel_set.type}]->(:{rel_set.end_label})")
        for name in rel_set.props:
            if not rel.declares(name):
                raise _undeclared(f"{rel.pattern} property {name!r}")


def _undeclared(what: str) -> ValueError:
    return ValueError(f"{what} is not declared in queries/declared.py: declare it there (type, unit, meaning, writer)")
