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
import scipy.sparse as sp
from sklearn.cluster import KMeans

MAX_STATES = 16
KEEP = 0.9
BATCH = 64


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
    return _cmi_bits(np.bincount(key.ravel(), minlength=m * size * 4).reshape(m, size, 2, 2))


def refined_cmi(x_in: np.ndarray, x_out: np.ndarray, state: np.ndarray, bits: np.ndarray) -> np.ndarray:
    """I(X_in; X_out | state, bit j) for every column j of `bits` (N x m, 0/1): the joint counts of
    all columns from one product of the sparse one-hot (state, X_in, X_out) codes with the bits."""
    code, size = state * 4 + x_in * 2 + x_out, int(state.max()) + 1
    ones = _indicator(code, size * 4, bits.dtype) @ bits  # (size * 4) x m: samples per (state, X_in, X_out) with bit j set
    zeros = np.bincount(code, minlength=size * 4)[:, None] - ones
    counts = np.stack([zeros, ones], axis=1).reshape(size, 2, 2, 2, -1)  # state, X_in, X_out, bit, j
    return _cmi_bits(counts.transpose(4, 0, 3, 1, 2).reshape(-1, size * 2, 2, 2))


def _cmi_bits(counts: np.ndarray) -> np.ndarray:
    """I(A; B | S) in bits from m x states x 2 x 2 joint counts of (S, A, B)."""
    p = counts / counts[0].sum()
    p_s = p.sum(axis=(2, 3), keepdims=True)
    p_sa = p.sum(axis=3, keepdims=True)
    p_sb = p.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p * p_s / (p_sa * p_sb)), 0.0)
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
    moved: np.ndarray  # neurons moved so far before each point of `curve` (0, ..., n)
    curve: np.ndarray  # I_R of the Y_R left after `moved` neurons
    losses: np.ndarray  # relay information lost by moving each neuron, as the search measured it (by neuron)
    module: np.ndarray  # the smallest remaining Y_R that keeps at least `keep` of the full I_R


def greedy_relay(acts: np.ndarray, bits: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, *,
                 k: int = MAX_STATES, keep: float = KEEP, seed: int = 0) -> RelaySearch:
    """Hintze & Adami's Algorithm 1: start with every neuron in Y_R and move to Y_0, one at a time,
    the neuron whose move keeps the most relay information. While 2 * BATCH or more neurons are
    left, a step moves the best 1/BATCH of them at once (the same search below that width; about
    BATCH * (1 + ln(n / BATCH)) steps instead of n on wide layers). Y_0's joint state is refined
    by the moved bits and merged back to `k` states by weighted k-means of the states' mean
    activation vectors."""
    n = acts.shape[1]
    columns = bits.astype(np.float32)
    floor = conditional_mi(x_in, x_out, group_states(acts, bits, k, seed))[0]  # I(X_in; X_out | all)
    state = np.zeros(len(acts), dtype=np.int64)
    remaining, order, losses = np.arange(n), [], np.empty(n)
    moved, curve = [0], [conditional_mi(x_in, x_out, state)[0] - floor]
    while len(remaining):
        kept = refined_cmi(x_in, x_out, state, columns)[remaining] - floor
        best = np.argsort(-kept, kind="stable")[:max(1, len(remaining) // BATCH)]
        chosen = remaining[best]
        losses[chosen] = curve[-1] - kept[best]
        order.extend(chosen.tolist())
        remaining = np.delete(remaining, best)
        for neuron in chosen:
            state = np.unique(state * 2 + bits[:, neuron], return_inverse=True)[1]
        moved.append(len(order))
        curve.append(conditional_mi(x_in, x_out, state)[0] - floor)
        state = _merge(state, acts, order, k, seed)
    curve, moved = np.asarray(curve), np.asarray(moved)
    good = np.flatnonzero(curve >= keep * curve[0]) if curve[0] > 0 else np.array([0])
    kept_out = min(int(moved[good.max()]), n - 1)  # a module keeps at least one neuron
    return RelaySearch(order=np.asarray(order), moved=moved, curve=curve, losses=losses,
                       module=np.sort(np.asarray(order[kept_out:], dtype=np.int64)))


def _merge(state: np.ndarray, acts: np.ndarray, order: list[int], k: int, seed: int) -> np.ndarray:
    """Above k states, cluster the states' centroids over the `order` columns into k (weighted)."""
    count = np.bincount(state)
    if len(count) <= k:
        return state
    # one sparse product over all columns, then the moved ones: cheaper than gathering acts[:, order]
    centroids = (_indicator(state, len(count), acts.dtype) @ acts)[:, order] / count[:, None]
    groups = KMeans(k, n_init=1, random_state=seed).fit_predict(centroids, sample_weight=count)
    return groups[state]


def _indicator(group: np.ndarray, groups: int, dtype) -> sp.csr_matrix:
    """groups x N sparse one-hot matrix: row g marks the samples in group g."""
    return sp.csr_matrix((np.ones(len(group), dtype=dtype), (group, np.arange(len(group)))), shape=(groups, len(group)))
