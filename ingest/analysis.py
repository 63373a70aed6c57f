"""The analysis of one model on one probe set: a plain object of arrays that the writer stores.

Its layers (`ingest.layers.Layer`) run from 0 (the flattened input) to the last (the class scores,
one neuron per class) in an order of the model's dataflow, each knowing the layers that feed it. A
neuron's id is `model/L<layer>/<index>`. `flows` holds the kept flow edges along every edge of the
DAG (see `flow.py`). `ingest.pipeline.analyze` makes one by running the stages of `stages.py` in
order.
"""

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np

from neurocypher.errors import UserError, shown

from .communities import Community, CommunityFlow, Membership
from .flow import Flow, path_flow
from .layers import Layer, LayerDag
from .options import AnalysisOptions

MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass
class Analysis(LayerDag):
    name: str
    dataset: str = ""
    class_names: list[str] | None = None  # from the data, else "0".."C-1" once the model's outputs are known
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    options: AnalysisOptions = field(default_factory=AnalysisOptions)
    image_shape: tuple[int, int] | None = None  # (height, width) when samples are images
    feature_names: list[str] | None = None
    arch: str = ""
    predictions: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    layers: list[Layer] = field(default_factory=list)
    flows: list[Flow] = field(default_factory=list)
    methods: list[str] = field(default_factory=list)  # the community methods that found communities
    skipped: dict[str, str] = field(default_factory=dict)  # method: why it found nothing
    memberships: list[Membership] = field(default_factory=list)
    communities: list[Community] = field(default_factory=list)
    community_flows: list[CommunityFlow] = field(default_factory=list)
    link_props: dict[tuple[str, str], dict] = field(default_factory=dict)  # (method, name): `Found.link_props[name]`
    layer_props: dict[int, dict] = field(default_factory=dict)  # layer: values stored on the Layer (`Found`)
    attribution: np.ndarray | None = None  # C x input features: input-to-class path flow
    metrics: dict[str, object] = field(default_factory=dict)  # model-level results, stored on the Model
    stage_seconds: dict[str, float] = field(default_factory=dict)  # wall time of each stage that ran
    notes: dict = field(default_factory=dict)  # facts found on the way, stored in `params`
    source: dict | None = None  # where the model and data came from (for `debug`), stored in `params`
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))

    @property
    def n_classes(self) -> int:
        return len(self.class_names)

    @property
    def params(self) -> dict:
        """What is stored as the Model's `params`: the options, the methods that ran or were skipped,
        facts found on the way, and the source."""
        return {
            **self.options.as_params(),
            "methods": list(self.methods),
            "skipped": dict(self.skipped),
            "image_shape": list(self.image_shape) if self.image_shape else None,
            **self.notes,
            "source": self.source,
        }

    @property
    def accuracy(self) -> float:
        return float((self.predictions == self.labels).mean())

    @property
    def class_accuracy(self) -> np.ndarray:
        """Share of each class's samples predicted as that class (0 for a class with no samples)."""
        hits = np.bincount(self.labels, weights=self.predictions == self.labels, minlength=self.n_classes)
        support = np.bincount(self.labels, minlength=self.n_classes)
        return np.divide(hits, support, out=np.zeros(self.n_classes), where=support > 0)

    def uid(self, layer: int, index: int | None = None) -> str:
        return f"{self.name}/L{layer}" + ("" if index is None else f"/{index}")

    def community_uid(self, c: Community) -> str:
        return f"{self.name}/{c.method}/L{c.layer}/c{c.index}"

    def flow_between(self, source: str, target: str) -> float:
        """Path flow from neuron `source` to neuron `target` (uids, source in a lower layer)."""
        (l1, i), (l2, j) = self.locate(source), self.locate(target)
        return float(path_flow(self.flows, self.widths, l1, l2)[i, j])

    def locate(self, uid: str) -> tuple[int, int]:
        """(layer, index) of a neuron uid of this model."""
        model, _, rest = uid.rpartition("/L")
        layer, _, index = rest.partition("/")
        if (
            model != self.name
            or not layer.isdigit()
            or not index.isdigit()
            or int(layer) >= len(self.layers)
            or int(index) >= self.layers[int(layer)].width
        ):
            raise UserError(f"{uid!r} is not a neuron of model {self.name!r} (ids look like {self.uid(1, 0)})")
        return int(layer), int(index)


def check_model_name(name: str) -> str:
    if not MODEL_NAME.fullmatch(name):
        raise UserError(f"model name {shown(name)} is not allowed: use 1 to 64 characters from A-Z a-z 0-9 . _ -")
    return name
