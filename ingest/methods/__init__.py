"""The registry of community methods. Each method is one module of this package with a
`find(context, options)` that reads the analysis under way (`ingest.context.MethodContext`) and
returns a `Found` (`ingest.communities`); its options class is declared in `ingest.methods.options`,
and its entry below. The registry and the options load none of the methods' libraries: a method's
module is imported when it runs. Adding a method is its module, its options class, one entry below,
its test, and the declaration of any property, metric or link value it stores (`queries.declared`)."""

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module

from .options import FlowOptions, InnerSightOptions, NeurFlowOptions, RelayOptions, WeightsOptions


@dataclass(frozen=True)
class Method:
    """A community method: what the registry lists about it."""

    name: str
    description: str  # one line
    reference: str  # the paper, with its arXiv id or DOI
    options: type  # a dataclass of the method's own options, with defaults
    module: str  # the module whose `find(context, options) -> Found` runs it
    default: bool = True  # runs when no methods are named

    @property
    def find(self) -> Callable:
        """The method's `find`, its module imported on first use."""
        return import_module(self.module).find


METHODS = {
    m.name: m
    for m in (
        Method(
            "innersight",
            "Gaussian-mixture communities of each layer's neurons on their class profiles (soft)",
            "Lan et al., InnerSightNet, ICLR 2025, openreview.net/forum?id=awz1JPyXNK",
            InnerSightOptions,
            f"{__name__}.innersight",
        ),
        Method(
            "flow",
            "Leiden modularity communities of the MI flow graph, split per layer",
            "Davis et al., NIF, arXiv:1901.08557; Traag et al., doi:10.1038/s41598-019-41695-z",
            FlowOptions,
            f"{__name__}.flow",
        ),
        Method(
            "weights",
            "spectral clusters of the absolute-weight graph, split per layer (clusterability baseline)",
            "Filan et al., Clusterability in Neural Networks, arXiv:2103.03386",
            WeightsOptions,
            f"{__name__}.weights",
        ),
        Method(
            "relay",
            "relay modules: per class, the neurons greedy shrinking of relay information leaves last",
            "Hintze & Adami, Entropy 2023, arXiv:2301.00911",
            RelayOptions,
            f"{__name__}.relay",
        ),
        Method(
            "neurflow",
            "per class: core neurons by Integrated Gradients, neuron groups and their circuit",
            "Cao et al., NeurFlow, ICLR 2025, arXiv:2502.16105",
            NeurFlowOptions,
            f"{__name__}.neurflow",
        ),
    )
}


def default_methods() -> tuple[str, ...]:
    """The methods that run when none are named."""
    return tuple(name for name, method in METHODS.items() if method.default)


def table() -> str:
    """The methods as a Markdown table (the README's, and `neurocypher methods`)."""
    rows = ["| method | what it finds | reference | default |", "|---|---|---|---|"]
    rows += [
        f"| `{m.name}` | {m.description} | {m.reference} | {'yes' if m.default else 'no'} |" for m in METHODS.values()
    ]
    return "\n".join(rows)
