"""A whole model's graph, ready to be written in one go: nodes per label and relationships per type.

Node properties are plain values (str, int, float, bool, or a list of them); relationship
properties are numeric columns. A relationship's ends are row positions in the node sets of its
start and end labels, so writers never look nodes up one by one. Every label, relationship type
and property is declared in `queries.declared`: a graph holding anything else is refused when it
is made, before anything is written.

Every node carries the graph's `model_id` and `generation`: a fresh id per write (`new_generation`,
which each backend's `write_model` calls), which the readers scope on (`queries.schema.SCOPE`), so
that a model being written or removed is never seen beside the one that is stored.
"""

import uuid
from dataclasses import dataclass, field

import numpy as np

from neurocypher.errors import UserError

from .declared import check_declared


@dataclass
class NodeSet:
    label: str
    rows: list[dict]  # each row has a `uid` unique within the model


@dataclass
class RelSet:
    type: str
    start_label: str
    end_label: str
    start: np.ndarray  # row positions in the start label's NodeSet
    end: np.ndarray  # row positions in the end label's NodeSet
    props: dict[str, np.ndarray] = field(default_factory=dict)  # numeric columns, one value per relationship

    def __post_init__(self):
        """Refuse what no backend can store, before anything is written (node values are checked by
        `queries.store.plain_params`)."""
        for name, values in self.props.items():
            if not np.isfinite(values).all():
                raise UserError(f"relationship property {self.type}.{name} holds NaN or inf; it cannot be stored")

    def __len__(self) -> int:
        return len(self.start)


@dataclass
class ModelGraph:
    model_id: str
    nodes: list[NodeSet]
    rels: list[RelSet]
    generation: str = field(default_factory=lambda: uuid.uuid4().hex)

    def __post_init__(self):
        check_declared(self)
        self._stamp()

    def new_generation(self) -> None:
        """Give the graph a fresh generation, for one write: a graph written twice (replacing
        itself) is two generations, never one whose nodes clash with those already stored."""
        self.generation = uuid.uuid4().hex
        self._stamp()

    def _stamp(self) -> None:
        """Stamp every node with the model id and the graph's generation."""
        for nodes in self.nodes:
            for row in nodes.rows:
                row["model_id"], row["generation"] = self.model_id, self.generation

    def node_set(self, label: str) -> NodeSet:
        return next(s for s in self.nodes if s.label == label)

    @property
    def size(self) -> int:
        """Nodes plus relationships, the unit of write progress."""
        return sum(len(s.rows) for s in self.nodes) + sum(len(r) for r in self.rels)

    def counts(self) -> dict[str, int]:
        """Nodes per label and relationships per type."""
        counts = {s.label: len(s.rows) for s in self.nodes}
        for r in self.rels:
            counts[r.type] = counts.get(r.type, 0) + len(r)
        return counts
