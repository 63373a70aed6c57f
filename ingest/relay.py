"""Relay information (Hintze & Adami) and relay modules found by greedy shrinking.

Per class c: X_in = 1[y = c], X_out = 1[prediction = c]; neurons are binarised (2-means per neuron,
or at their median). The relay information of a group Y_R given a group Y_0 is
    I_R = I(X_in; X_out | Y_0) - I(X_in; X_out | Y_0, Y_R),
from plug-in entropies of joint discrete states, in bits; with Y_0 empty it is the co-information
I(X_in; X_out; Y_R), which is negative under synergy. A group's joint state is its tuple of binary
values, coarse-grained to at most K states (k-means on its activation vectors) when it has more.
"""

from dataclasses import dataclass

import numpy as np
from sklearn.cluster import KMeans

MAX_STATES = 16
KEEP = 0.9


def binarize(acts: np.ndarray, method: str = "kmeans", iterations: int = 30) -> np.ndarray:
    """N x n booleans: each neuron split by 1-D 2-means (or at its median)."""
    if method == "median":
        return acts > np.median(acts, axis=0)
    threshold = acts.mean(axis=0)
    for _ in range(iterations):
        high = acts > threshold
        upper = np.where(high, acts, 0).sum(0) / np.maximum(high.sum(0), 1)
        lower = np.where(~high, acts, 0).sum(0) / np.maximum((~high).sum(0), 1)
        threshold = (upper + lower) / 2
    return acts > threshold


def group_states(acts: np.ndarray, bits: np.ndarray, k: int = MAX_STATES, seed: int = 0) -> np.ndarray:
    """Joint state of a group per sample: its binary tuple, or k-means of its activations when the
    tuples take more than `k` values."""
    _, states = np.unique(bits, axis=0, return_inverse=True)
    if states.max() < k:
        return states.ravel()
    return KMeans(k, n_init=1, random_state=seed).fit_predict(acts)


def conditional_mi(x_in: np.ndarray, x_out: np.ndarray, states: np.ndarray) -> np.ndarray:
    """I(X_in; X_out | S) in bits for each column of `states` (N x m non-negative ints; a 1-D
    `states` is one column), X_in and X_out binary."""
    states = states.reshape(len(states), -1)
    n, m = states.shape
    size = int(states.max()) + 1
    key = (states * 4 + (x_in * 2 + x_out)[:, None]) + np.arange(m) * size * 4
    counts = np.bincount(key.ravel(), minlength=m * size * 4).reshape(m, size, 2, 2) / n
    p_s = counts.sum(axis=(2, 3), keepdims=True)
    p_sa = counts.sum(axis=3, keepdims=True)
    p_sb = counts.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(counts > 0, counts * np.log2(counts * p_s / (p_sa * p_sb)), 0.0)
    return terms.sum(axis=(1, 2, 3))


def class_indicators(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """X_in and X_out for every class: two C x N 0/1 arrays."""
    classes = np.arange(n_classes)[:, None]
    return (labels[None, :] == classes).astype(np.int64), (predictions[None, :] == classes).astype(np.int64)


def relay_bits(x_in: np.ndarray, x_out: np.ndarray, states: np.ndarray) -> np.ndarray:
    """Co-information I(X_in; X_out; S) = I(X_in; X_out) - I(X_in; X_out | S), per class (rows)."""
    none = np.zeros(x_in.shape[1], dtype=np.int64)
    return np.array([conditional_mi(a, b, none)[0] - conditional_mi(a, b, states)[0] for a, b in zip(x_in, x_out)])


@dataclass
class RelaySearch:
    """Greedy shrinking of one layer for one class."""
    order: np.ndarray  # neurons in the order they were moved from Y_R to Y_0
    curve: np.ndarray  # I_R before any move and after each move (len = n + 1)
    module: np.ndarray  # the smallest remaining Y_R that keeps at least `keep` of the full I_R

    @property
    def losses(self) -> np.ndarray:
        """Relay information lost by moving each neuron (indexed by neuron)."""
        loss = np.empty(len(self.order))
        loss[self.order] = self.curve[:-1] - self.curve[1:]
        return loss


def greedy_relay(acts: np.ndarray, bits: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, *,
                 k: int = MAX_STATES, keep: float = KEEP, seed: int = 0) -> RelaySearch:
    """Hintze & Adami's Algorithm 1: start with every neuron in Y_R and move to Y_0, one at a time,
    the neuron whose move keeps the most relay information. Y_0's joint state is updated
    incrementally (state * 2 + bit), and merged back to `k` states by weighted k-means of the
    states' mean activation vectors whenever it has more."""
    n = acts.shape[1]
    floor = conditional_mi(x_in, x_out, group_states(acts, bits, k, seed))[0]  # I(X_in; X_out | all)
    state = np.zeros(len(acts), dtype=np.int64)
    remaining, order = list(range(n)), []
    curve = [conditional_mi(x_in, x_out, state)[0] - floor]
    for _ in range(n):
        candidates = state[:, None] * 2 + bits[:, remaining]
        kept = conditional_mi(x_in, x_out, candidates)
        best = int(np.argmax(kept))
        chosen = remaining.pop(best)
        order.append(chosen)
        curve.append(kept[best] - floor)
        state = _merge(candidates[:, best], acts[:, order], k, seed)
    curve = np.asarray(curve)
    good = np.flatnonzero(curve >= keep * curve[0]) if curve[0] > 0 else np.array([0])
    moved = min(int(good.max()), n - 1)  # a module keeps at least one neuron
    return RelaySearch(order=np.asarray(order), curve=curve, module=np.sort(np.asarray(order[moved:], dtype=np.int64)))


def _merge(state: np.ndarray, acts: np.ndarray, k: int, seed: int) -> np.ndarray:
    """Renumber states 0..; above k states, cluster the states' centroids into k (weighted)."""
    _, state = np.unique(state, return_inverse=True)
    count = np.bincount(state)
    if len(count) <= k:
        return state
    centroids = np.zeros((len(count), acts.shape[1]))
    np.add.at(centroids, state, acts)
    centroids /= count[:, None]
    groups = KMeans(k, n_init=1, random_state=seed).fit_predict(centroids, sample_weight=count)
    return groups[state]
