"""Relay modules (Hintze & Adami): per class and hidden layer, the neurons that the greedy
shrinking of relay information leaves last."""

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from neurocypher.progress import progress_bar

from ..communities import Community, Found
from ..context import MethodContext
from ..relay import class_indicators, greedy_relay, state_cap
from .options import RelayOptions


def find(context: MethodContext, options: RelayOptions) -> Found:
    """Each class's relay module in each hidden layer, and each neuron's relay score.

    Parameters
    ----------
    context : MethodContext
        Its layers' binarised activations are used, and its cap on joint states (`relay_states`;
        else `options.samples_per_state` sets it).
    options : RelayOptions

    Returns
    -------
    Found
        One community per (hidden layer, class), with the greedy order and curve; modules of
        different classes may overlap. Neuron property `relay_score`: one value per class.

    Notes
    -----
    With exact states, the classes' searches of a layer run in parallel threads, one per core
    (NumPy and SciPy release the GIL in their loops): 1.9x on 2 cores, the same modules.

    References
    ----------
    .. [1] Hintze, Adami, "Detecting Information Relays in Deep Neural Networks", Entropy 25(3),
       401 (2023), arXiv:2301.00911, doi:10.3390/e25030401.
    """
    x_in, x_out = class_indicators(context.labels, context.predictions, context.n_classes)
    hidden = context.layers[1:-1]
    states = context.relay_states or state_cap(len(context.labels), options.samples_per_state)
    found = Found()
    with (
        progress_bar(len(hidden) * context.n_classes, "relay modules") as advance,
        ThreadPoolExecutor(os.cpu_count() if states is None else 1) as pool,  # k-means sets global thread limits
    ):
        for layer in hidden:
            bits = context.binary[layer.index]

            def search(c: int, bits=bits):
                done = greedy_relay(
                    bits, x_in[c], x_out[c], essential=options.essential, noise=options.noise, max_states=states
                )
                advance()
                return done

            searches = list(pool.map(search, range(context.n_classes)))  # the classes' searches are independent
            for c, done in enumerate(searches):
                props = {"class": c, "relay_order": done.order, "relay_curve": done.curve}
                found.communities.append(Community(NAME, layer.index, c, done.module, props))
            found.neuron_props[layer.index] = {"relay_score": np.column_stack([done.score for done in searches])}
    return found


NAME = "relay"
