"""What a community method may read of the analysis under way: a `MethodContext`, made by the
communities stage (`ingest.stages`) once the layers and their flow are known. A method is
`find(context, options) -> Found` (`ingest.methods`); it reads the context, never the run, and
gives back everything it finds in its `Found`. The model runs between its layers as the context's
`plans` say (`ingest.segments.Plans`, made by the record stage)."""

from dataclasses import dataclass

import numpy as np
from torch import nn

from .flow import Flow
from .layers import Layer, LayerDag
from .neuronize import Recording, record
from .relay import binarize
from .segments import Plans


class BinarizedLayers:
    """Each layer's neurons binarised for relay information (`ingest.relay.binarize`, N x width
    booleans), each layer computed once, when first asked for: the relay method and the relay
    information stage read the same."""

    def __init__(self, layers: list[Layer], method: str):
        self.layers, self.method = layers, method
        self._done: dict[int, np.ndarray] = {}

    def __getitem__(self, layer: int) -> np.ndarray:
        if layer not in self._done:
            self._done[layer] = binarize(self.layers[layer].acts, self.method)
        return self._done[layer]


@dataclass(frozen=True)
class MethodContext(LayerDag):
    """The model, the probe set and the layers with their flow, as a community method reads them
    (read-only: a method returns what it finds and changes none of this)."""

    plans: Plans  # the model's execution plans between its layers (`ingest.segments`), the model with them
    X: np.ndarray  # the probe samples as the model takes them (token data: packed ids and mask, `ingest.tokens`)
    labels: np.ndarray
    predictions: np.ndarray
    n_classes: int
    image_shape: tuple[int, int] | None  # (height, width) when samples are images
    layers: tuple[Layer, ...]  # from the input (0) to the class scores (last), in dataflow order
    flows: tuple[Flow, ...]  # the kept flow edges along every edge of the layer DAG
    binary: BinarizedLayers  # binary[layer]: its neurons binarised for relay information
    relay_states: int  # the analysis's cap on joint states for relay information (0: exact)
    layer_names: tuple[str, ...]  # the modules named to neuronize (empty: the default rule)
    token_reduce: str  # how features were reduced over token or step axes
    memory_bytes: int  # the memory budget for recorded activations

    @property
    def model(self) -> nn.Module:
        """The model as the analysis runs it (`neuronize.ClassScores`: class scores), on its device."""
        return self.plans.model

    @classmethod
    def of(cls, analysis, plans: Plans, X: np.ndarray, binary: BinarizedLayers | None = None) -> "MethodContext":
        """The context of the model of `plans` on the probe samples `X`, as `analysis` (an
        `ingest.analysis.Analysis` with its layers and flows made) sees it; `binary` is made when not
        given. The analysis is read, its module not imported: that module imports the options, and
        so the method registry, which imports each method's module, which imports this one."""
        options = analysis.options
        return cls(
            plans=plans,
            X=X,
            labels=analysis.labels,
            predictions=analysis.predictions,
            n_classes=analysis.n_classes,
            image_shape=analysis.image_shape,
            layers=tuple(analysis.layers),
            flows=tuple(analysis.flows),
            binary=BinarizedLayers(analysis.layers, options.binarization) if binary is None else binary,
            relay_states=options.relay_states,
            layer_names=options.layers,
            token_reduce=options.token_reduce,
            memory_bytes=options.memory_bytes(),
        )

    def record(self, inputs: np.ndarray, batch_size: int) -> Recording:
        """Every layer's activations on other `inputs`, recorded as the analysis recorded the probe set."""
        return record(
            self.model,
            inputs,
            layers=self.layer_names,
            batch_size=batch_size,
            token_reduce=self.token_reduce,
            memory_budget=self.memory_bytes,
        )
