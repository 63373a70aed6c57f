"""The analysis of one model on one probe set: a plain object of arrays that the writer stores.

Layers are numbered from 0 (the flattened input) to the last (the class scores, one neuron per
class) in an order of the model's dataflow (`neuronize.py`); each layer knows the layers that feed
it (`inputs`), the edges of the layer DAG. A neuron's id is `model/L<layer>/<index>`. `flows` holds
the kept flow edges along every edge of the DAG (see `flow.py`). `analyze` runs the stages of
`stages.py` in order.
"""

import dataclasses
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone

import numpy as np
from torch import nn

from queries.errors import UserError, first_line, shown

from .communities import Community, CommunityFlow, Membership
from .data import check_features, check_labels
from .flow import Flow, layer_offsets, path_flow
from .neuronize import ClassScores
from .options import Options
from .taps import Layout, Point
from .tokens import Tokens, pack

MODEL_NAME = re.compile(r"[A-Za-z0-9._-]{1,64}")


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


@dataclass
class Analysis:
    name: str
    dataset: str = ""
    class_names: list[str] | None = None  # from the data, else "0".."C-1" once the model's outputs are known
    labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    options: Options = field(default_factory=Options)
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


def analyze(
    model: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    *,
    name: str,
    dataset: str = "",
    class_names: list[str] | None = None,
    image_shape: tuple[int, int] | None = None,
    feature_names: list[str] | None = None,
    mask: np.ndarray | None = None,
    vocab: list[str] | None = None,
    options: Options | None = None,
    **settings,
) -> Analysis:
    """Neuronize `model` on the probe set (X, y) and run every analysis stage (`stages.STAGES`):
    information flow (NIF), communities by each chosen method, their relay information per class,
    closing, knockout and labels.

    Parameters
    ----------
    model : torch.nn.Module
    X, y : numpy arrays
        The probe samples (as the model takes them) and their integer labels.
    name : str
        The model id in the store.
    dataset, class_names, image_shape, feature_names
        Facts about the data (see `ingest.data.Dataset.analyze_kwargs`).
    mask, vocab
        Token data: the attention mask (samples x positions) and the token strings by id. Integer X
        is token ids (`ingest.tokens`) when either is given or the model has an `nn.Embedding`;
        other X is cast to float32.
    options : Options, optional
        The analysis settings; `**settings` override single fields (e.g. `methods=("flow",)`).
        The model runs on `options.device` during the analysis and is moved back after it.

    Returns
    -------
    Analysis
    """
    from .stages import Run, run_stages

    check_model_name(name)
    try:
        options = dataclasses.replace(options or Options(), **settings)
    except TypeError as exc:
        raise UserError(
            f"analyze() got a setting it does not know ({first_line(exc)}); the settings are the "
            "fields of ingest.options.Options"
        ) from None
    if not isinstance(model, nn.Module):
        raise UserError(f"model must be a torch.nn.Module, got a {type(model).__name__}")
    X, tokens = _samples(model, check_features(X), mask, vocab)
    y = check_labels(y, len(X))
    analysis = Analysis(
        name=name,
        dataset=dataset,
        class_names=list(class_names) if class_names else None,
        labels=y,
        options=options,
        image_shape=tuple(image_shape) if image_shape and tokens is None else None,
        feature_names=tokens.names if tokens is not None else feature_names,
    )
    device, home = options.torch_device(), next((p.device for p in model.parameters()), None)
    analysis.notes["ran_on"] = device.type
    try:
        return run_stages(Run(model=model.to(device), X=X, y=y, options=options, analysis=analysis, tokens=tokens))
    finally:
        if home is not None:
            model.to(home)


def runnable(model: nn.Module, X, mask=None, vocab=None, logits: str = "") -> tuple[ClassScores, np.ndarray]:
    """The model as the analysis runs it (`ingest.neuronize.ClassScores`) and the probe samples as it
    takes them (token data packed with its mask), for running a stored model's model and data again."""
    X, tokens = _samples(model, check_features(X), mask, vocab)
    return ClassScores(model, logits, tokens), X


def _samples(model: nn.Module, X: np.ndarray, mask, vocab) -> tuple[np.ndarray, Tokens | None]:
    """The probe samples as the analysis runs them, and their tokens for token data (integer X with a
    mask or a vocabulary, or for a model with an `nn.Embedding`): packed with the mask (`ingest.tokens`)."""
    embeds = any(isinstance(m, nn.Embedding) for m in model.modules())
    if X.dtype.kind != "i" or not (mask is not None or vocab is not None or embeds):
        if mask is not None or vocab is not None:
            raise UserError("an attention mask or a vocabulary comes with integer token ids; X is not integer")
        return X.astype(np.float32, copy=False), None
    if X.ndim != 2 or X.min() < 0:
        raise UserError(f"token ids must be non-negative integers, samples x positions; got shape {X.shape}")
    packed = pack(X, mask)
    return packed, Tokens.of(packed, vocab, pad=_pad_id(model))


def _pad_id(model: nn.Module) -> int:
    """The id that replaces a deleted token: the model config's `pad_token_id` (Hugging Face), else 0."""
    pad = getattr(getattr(model, "config", None), "pad_token_id", None)
    return pad if isinstance(pad, int) else 0
