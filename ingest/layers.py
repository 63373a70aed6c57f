"""A model's layers as an analysis sees them: a `Layer` (its neurons' recorded values, where it is
read in the model, the layers that feed it) and what follows from a sequence of them (`LayerDag`).

Layers are numbered from 0 (the flattened input) to the last (the class scores, one neuron per
class) in an order of the model's dataflow (`ingest.neuronize`); each layer knows the layers that
feed it (`inputs`), the edges of the layer DAG. Both an analysis (`ingest.analysis.Analysis`) and a
community method's context (`ingest.context.MethodContext`) hold them.
"""

from dataclasses import dataclass, field

import numpy as np

from .flow import layer_offsets
from .taps import Layout, Point


@dataclass
class Layer:
    index: int
    name: str  # short and unique: the tail of `path` (see `ingest.neuronize`; "input" and "output" for the ends)
    module: str  # that module's name in the model, "" for the input and a merge
    point: Point | None  # where its tensor is read in a forward pass, None at the ends
    layout: Layout  # where its neurons are in that tensor
    inputs: tuple[int, ...]  # the layers that feed it (none for the input)
    kind: str  # input | linear | conv | attention | recurrent | merge | module | output
    activation: str  # activation read after the weights, "" if none
    acts: np.ndarray  # N x width, float32
    codes: np.ndarray  # N x width, uint8 equal-frequency bins
    entropy: np.ndarray  # bits, Miller-Madow corrected
    class_means: np.ndarray  # C x width
    props: dict[str, np.ndarray] = field(default_factory=dict)  # more per-neuron values, stored as is
    path: str = ""  # the full module path (a merge: CONTAINER.add), "" at the ends

    @property
    def width(self) -> int:
        return self.acts.shape[1]

    @property
    def neuron_kind(self) -> str:
        return self.kind if self.kind in ("input", "output") else "hidden"

    @property
    def constant(self) -> np.ndarray:
        return self.acts.max(axis=0) == self.acts.min(axis=0)


class LayerDag:
    """What follows from a sequence of `layers` (an Analysis's, a method's context's): their widths,
    the edges of the layer DAG, and where each layer's neurons start in one numbering of all."""

    @property
    def widths(self) -> list[int]:
        return [layer.width for layer in self.layers]

    @property
    def feeds(self) -> list[tuple[int, int]]:
        """The edges of the layer DAG, (lower, upper), by upper layer then lower."""
        return [(lower, layer.index) for layer in self.layers for lower in layer.inputs]

    @property
    def offsets(self) -> np.ndarray:
        """Where each layer's first neuron is when all neurons are numbered in one sequence."""
        return layer_offsets(self.widths)
