"""Each community method's own options (set with `--option METHOD.NAME=VALUE`), declared once with
their defaults, bounds and help (`ingest.bounds`), apart from the methods' code: naming and checking
them needs none of the methods' libraries."""

from dataclasses import dataclass
from typing import ClassVar

from ..bounds import check, option

# relay modules' stopping rule (`ingest.relay.module_size`): the share of the I_R left a module neuron's
# move must cost, and the noise floor
ESSENTIAL, NOISE = 0.5, 0.02
SKLEARN_SEEDS = {"low": 0, "high": 2**32 - 1}  # the seeds scikit-learn's random_state takes


def _seed(**bounds):
    return option("seed of the method's random draws", 0, **bounds)


class MethodOptions:
    """What every method's options do: refuse a value out of its type or bounds when made, naming it
    METHOD.NAME as `--option` does."""

    method: ClassVar[str]

    def __post_init__(self):
        check(self, f"{self.method}.")


@dataclass(frozen=True)
class InnerSightOptions(MethodOptions):
    method = "innersight"
    starts: int = option('k-means++ starts per Gaussian-mixture fit ("multi-step start-up")', 4, low=1)
    criterion: str = option("how the number of communities K is chosen", "silhouette", choices=("silhouette", "bic"))
    parts: bool = option("add the positive/negative-part attributes to the class profile", False)
    seed: int = _seed(**SKLEARN_SEEDS)


@dataclass(frozen=True)
class FlowOptions(MethodOptions):
    method = "flow"
    inputs: bool = option("input features in the Leiden graph (else each joins the community it feeds most)", False)
    seed: int = _seed()


@dataclass(frozen=True)
class WeightsOptions(MethodOptions):
    method = "weights"
    clusters: int = option("spectral clusters (0: as many as the model has classes)", 0, low=0)
    inputs: bool = option("input features in the graph (else each joins the cluster it feeds most)", False)
    seed: int = _seed(**SKLEARN_SEEDS)


@dataclass(frozen=True)
class RelayOptions(MethodOptions):
    method = "relay"
    essential: float = option(
        "stopping rule: a module neuron's move costs at least this share of the relay information left",
        ESSENTIAL,
        low=0,
        high=1,
    )
    noise: float = option(
        "stopping rule, too: a move with less than this share of the layer's relay information left joins the module",
        NOISE,
        low=0,
        high=1,
    )
    samples_per_state: int = option(
        "0: exact joint states, as the paper; S: exact up to N / S states, merged beyond", 0, low=0
    )


@dataclass(frozen=True)
class NeurFlowOptions(MethodOptions):
    method = "neurflow"
    top_k: int = option("concept inputs per neuron", 50, low=1)
    tau: int = option("core neurons per explained neuron, at most (see `core_size`)", 16, low=1)
    steps: int = option("Integrated Gradients steps", 50, low=1)
    draws: int = option("random sets per class, layer and tau in the fidelity check", 20, low=1)
    seed: int = _seed(low=0)
