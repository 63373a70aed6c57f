"""Relay information (Hintze & Adami) and relay modules found by greedy shrinking.

Per class c: X_in = 1[y = c], X_out = 1[prediction = c]; every hidden neuron is binarised (2-means
on its activations, or at its median). The relay information of a group Y_R given a group Y_0 is
    I_R = I(X_in; X_out | Y_0) - I(X_in; X_out | Y_0, Y_R),
in bits, from plug-in entropies of the exact joint binary states of the groups (coarse-graining to
at most `max_states` states by k-means is an option, off by default). The relay information of a
set S inside its layer L is conditional on the rest of the layer,
    I_R(S) = I(X_in; X_out | L \\ S) - I(X_in; X_out | L);
with Y_0 empty, I_R is the co-information I(X_in; X_out; Y_R), a different quantity.

References
----------
.. [1] A. Hintze and C. Adami, "Detecting Information Relays in Deep Neural Networks", Entropy 25(3),
   401 (2023). doi:10.3390/e25030401, arXiv:2301.00911. Reference code: github.com/Hintzelab/
   Entropy-Detecting-Information-Relays-in-Deep-Neural-Networks (``computeTransmissionHfast``,
   ``singleShrinkingDecompositionInformation``, ``removalIntoVec``).
"""

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import scipy.sparse as sp
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from .methods.options import ESSENTIAL, NOISE

CHUNK = 31  # columns folded into the joint state at a time (state < 2**31, so state << 31 | code fits int64)
SPLIT_COLUMNS = 64  # binarize: neurons split at a time (an N x 64 table of split costs)
TIE = 12  # decimals (bits) at which two candidates tie: below, sums differ only by their order of addition


def binarize(acts: np.ndarray, method: str = "kmeans") -> np.ndarray:
    """N x n booleans: each neuron split by 1-D 2-means (exactly: the split of its sorted values with the
    least within-cluster sum of squares), or at its median. A constant neuron is all False.

    References
    ----------
    .. [1] Hintze & Adami (2023), arXiv:2301.00911: ``KMeans(n_clusters=2)`` per neuron in the reference code.
    """
    split = np.empty(acts.shape, dtype=bool)
    for j in range(0, acts.shape[1], SPLIT_COLUMNS):  # a block at a time: the layer is never copied whole
        block = acts[:, j : j + SPLIT_COLUMNS]
        if method == "median":
            split[:, j : j + SPLIT_COLUMNS] = block > np.median(block, axis=0)
        else:
            block = np.asarray(block, dtype=np.float64)
            split[:, j : j + SPLIT_COLUMNS] = block > _two_means_threshold(block)
    return split


def _two_means_threshold(acts: np.ndarray) -> np.ndarray:
    """Per column, the midpoint of the optimal 1-D 2-means split (+inf for a constant column)."""
    values = np.sort(acts - acts.mean(axis=0), axis=0)
    n = len(values)
    left = np.arange(1, n)[:, None]  # samples left of each split point
    s1, s2 = np.cumsum(values, axis=0)[:-1], np.cumsum(values**2, axis=0)[:-1]
    t1, t2 = values.sum(axis=0), (values**2).sum(axis=0)
    sse = s2 - s1**2 / left + (t2 - s2) - (t1 - s1) ** 2 / (n - left)
    sse[values[1:] <= values[:-1]] = np.inf  # no split between equal values
    best = np.argmin(sse, axis=0)
    cols = np.arange(values.shape[1])
    threshold = (values[best, cols] + values[best + 1, cols]) / 2 + acts.mean(axis=0)
    return np.where(np.isfinite(sse[best, cols]), threshold, np.inf)


def class_indicators(labels: np.ndarray, predictions: np.ndarray, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """X_in and X_out for every class: two C x N 0/1 arrays."""
    classes = np.arange(n_classes)[:, None]
    return (labels[None, :] == classes).astype(np.int64), (predictions[None, :] == classes).astype(np.int64)


def joint_states(bits: np.ndarray, max_states: int | None = None, seed: int = 0) -> np.ndarray:
    """The joint state of every sample (row) of an N x m binary array, as ids 0..S-1.

    Exact by default: two rows share a state when they are equal. With `max_states`, more states than
    that are merged by k-means of the distinct rows (weighted by their counts) into `max_states`.
    """
    state = np.zeros(len(bits), dtype=np.int64)
    for start in range(0, bits.shape[1], CHUNK):
        chunk = bits[:, start : start + CHUNK].astype(np.int64)
        state = np.unique((state << CHUNK) | chunk @ (1 << np.arange(chunk.shape[1])), return_inverse=True)[1]
    state = state.ravel()
    if max_states is None or state.max() < max_states:
        return state
    _, first, counts = np.unique(state, return_index=True, return_counts=True)
    kmeans = KMeans(max_states, n_init=1, random_state=seed)
    with threadpool_limits(1):  # on a few thousand rows, threads cost 30x more than they save (same result)
        return kmeans.fit_predict(bits[first].astype(float), sample_weight=counts)[state]


def state_cap(n_samples: int, samples_per_state: int) -> int | None:
    """The most joint states the relay method's greedy keeps exact (`max_states` of `greedy_relay`).

    Parameters
    ----------
    n_samples : int
        The probe samples N.
    samples_per_state : int
        The fewest samples per state on average; 0 for exact states throughout (the paper's code).

    Returns
    -------
    int or None
        max(2, N // samples_per_state), or None (exact).

    Notes
    -----
    Below the cap the states are exact, as the paper's; beyond it they are merged by k-means
    (`joint_states`). With exact states the plug-in I(X_in; X_out | Y_0) vanishes once Y_0's states
    are nearly all distinct, so the greedy's last moves, where the module is read, are ties. The
    measurements on composite networks, exact and capped, are in docs/groundtruth.md ("Method notes").
    """
    return max(2, n_samples // samples_per_state) if samples_per_state else None


def conditional_mi(x_in: np.ndarray, x_out: np.ndarray, state: np.ndarray) -> np.ndarray:
    """I(X_in; X_out | S) in bits for every class: x_in and x_out are C x N (or N) 0/1 arrays, `state`
    the N state ids of S; returns C values (plug-in estimate)."""
    x_in, x_out = np.atleast_2d(x_in), np.atleast_2d(x_out)
    size = int(state.max()) + 1
    key = state * 4 + x_in * 2 + x_out + np.arange(len(x_in))[:, None] * (size * 4)
    return _cmi_bits(np.bincount(key.ravel(), minlength=len(x_in) * size * 4).reshape(-1, size, 2, 2))


def relay_information(
    relay: np.ndarray, given: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, *, max_states: int | None = None
) -> np.ndarray:
    """I_R = I(X_in; X_out | Y_0) - I(X_in; X_out | Y_0, Y_R) per class.

    Parameters
    ----------
    relay, given : np.ndarray
        N x |Y_R| and N x |Y_0| binary arrays (Y_0 may have no columns: then I_R is the co-information).
    x_in, x_out : np.ndarray
        C x N (or N) 0/1 arrays from `class_indicators`.
    max_states : int, optional
        Coarse-grain each joint state to at most this many states (default: exact states).

    Returns
    -------
    np.ndarray
        C values in bits.

    References
    ----------
    .. [1] Hintze & Adami (2023), arXiv:2301.00911; ``computeTransmissionHfast`` in the reference code.
    """
    base = conditional_mi(x_in, x_out, joint_states(given, max_states))
    return base - conditional_mi(x_in, x_out, joint_states(np.hstack([given, relay]), max_states))


def set_relay_bits(
    bits: np.ndarray, members: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, *, max_states: int | None = None
) -> np.ndarray:
    """I_R(S) = I(X_in; X_out | L \\ S) - I(X_in; X_out | L) of the set S = `members` of layer L, per class.

    Parameters
    ----------
    bits : np.ndarray
        N x width booleans: the layer L, binarised.
    members : np.ndarray
        Neuron indices (or a width-long boolean mask) of S.
    x_in, x_out : np.ndarray
        C x N (or N) 0/1 arrays from `class_indicators`.
    max_states : int, optional
        Coarse-grain the joint states of L \\ S and L to at most this many states (default: exact).

    Returns
    -------
    np.ndarray
        C values in bits: the relay information of S conditional on the rest of its layer.

    References
    ----------
    .. [1] Hintze & Adami (2023), arXiv:2301.00911: the quantity their knockout regressions use
       (``computeTransmissionHfast`` with ``maskNC`` = L \\ S in the reference code).
    """
    inside = np.zeros(bits.shape[1], dtype=bool)
    inside[members] = True
    return relay_information(bits[:, inside], bits[:, ~inside], x_in, x_out, max_states=max_states)


def _mixed(totals: np.ndarray) -> np.ndarray:
    """Per row of S x 4 code counts (2 X_in + X_out), whether both X_in and X_out take both values."""
    n, ones_in, ones_out = totals.sum(axis=1), totals[:, 2] + totals[:, 3], totals[:, 1] + totals[:, 3]
    return (ones_in > 0) & (ones_in < n) & (ones_out > 0) & (ones_out < n)


@lru_cache(maxsize=4)
def _x_log_x(n: int) -> np.ndarray:
    """c log2 c for the counts c = 0..n (0 log 0 = 0)."""
    c = np.arange(n + 1, dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(c > 0, c * np.log2(c), 0.0)


def _cmi_bits(counts: np.ndarray, n: int | None = None) -> np.ndarray:
    """I(A; B | S) in bits from m x states x 2 x 2 joint counts of (S, A, B) over `n` samples (default: all
    counted ones)."""
    p = counts / (counts[0].sum() if n is None else n)
    p_s = p.sum(axis=(2, 3), keepdims=True)
    p_sa = p.sum(axis=3, keepdims=True)
    p_sb = p.sum(axis=2, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * np.log2(p * p_s / (p_sa * p_sb)), 0.0)
    return terms.sum(axis=(1, 2, 3))


def _indicator(group: np.ndarray, groups: int) -> sp.csr_matrix:
    """groups x N sparse one-hot matrix: row g marks the samples in group g."""
    return sp.csr_matrix((np.ones(len(group), np.float32), (group, np.arange(len(group)))), shape=(groups, len(group)))


class _MixedStates:
    """Y_0's joint states in which X_in and X_out both vary (the only ones that can hold conditional
    mutual information, before or after a refinement), with, for every candidate bit j, the (X_in, X_out)
    counts of the samples of each such state that have bit j.

    Attributes
    ----------
    label : np.ndarray
        Per sample, its row in the arrays below, or -1 outside the mixed states.
    totals : np.ndarray
        S x 4 counts per state of the codes 2 X_in + X_out.
    ones : np.ndarray
        S x 4 x n: the same counts over the samples with bit j (float32: whole numbers below 2**24, exact).
    terms : np.ndarray
        S x n: N I(X_in; X_out | state, bit j) summed over the state's two halves, in bits.
    """

    def __init__(self, bits: np.ndarray, x_in: np.ndarray, x_out: np.ndarray, state: np.ndarray):
        self.bits, self.code = bits, x_in * 2 + x_out
        self.xlx = _x_log_x(len(bits))
        every = np.bincount(state * 4 + self.code, minlength=4 * (int(state.max()) + 1)).reshape(-1, 4)
        mixed = _mixed(every)
        rows = np.full(len(mixed), -1)
        rows[mixed] = np.arange(mixed.sum())
        self.label = rows[state]
        inside = np.flatnonzero(self.label >= 0)
        self.totals = every[mixed]  # S x 4, the mixed states in the order of their rows
        self.ones = self._counts(inside, self.label[inside], len(self.totals))
        self.terms = self._terms(self.ones, self.totals)

    def scores(self) -> np.ndarray:
        """I(X_in; X_out | Y_0, bit j) in bits for every column j."""
        return self.terms.sum(axis=0) / len(self.bits)

    def move(self, j: int) -> None:
        """Refine Y_0 by bit j: every mixed state it splits is replaced by its halves that still mix."""
        with_j = self.ones[:, :, j].astype(np.int64)  # S x 4: the codes of each state's samples with bit j
        size, size_j = self.totals.sum(axis=1), with_j.sum(axis=1)
        split = np.flatnonzero((size_j > 0) & (size_j < size))
        if not len(split):
            return
        # the smaller half of each split state is counted from its samples, the other is the rest
        small = (size_j[split] <= size[split] - size_j[split]).astype(int)  # the bit value of the smaller half
        which = np.full(len(size) + 1, -1)  # a state's position in `split`; the last entry serves label -1
        which[split] = np.arange(len(split))
        bit = self.bits[:, j]
        at = which[self.label]
        counted = np.flatnonzero((at >= 0) & (bit == small[np.maximum(at, 0)]))
        smaller = self._counts(counted, at[counted], len(split))
        parent = self.ones[split]
        halves = [np.where((small == v)[:, None, None], smaller, parent - smaller) for v in (0, 1)]
        half_totals = [self.totals[split] - with_j[split], with_j[split]]
        kept = np.setdiff1d(np.arange(len(size)), split)
        still = [_mixed(t) for t in half_totals]
        ones = [self.ones[kept]] + [h[m] for h, m in zip(halves, still)]
        totals = [self.totals[kept]] + [t[m] for t, m in zip(half_totals, still)]
        terms = [self.terms[kept]] + [self._terms(o, t) for o, t in zip(ones[1:], totals[1:])]
        # new rows: the kept states first, then the mixed halves with bit 0, then those with bit 1
        into = [np.full(len(size) + 1, -1) for _ in (0, 1)]
        for v in (0, 1):
            into[v][kept] = np.arange(len(kept))
            into[v][split[still[v]]] = len(kept) + sum(len(o) for o in ones[1 : 1 + v]) + np.arange(still[v].sum())
        self.label = np.where(bit, into[1][self.label], into[0][self.label])
        self.ones, self.totals, self.terms = np.concatenate(ones), np.concatenate(totals), np.concatenate(terms)

    def _counts(self, samples: np.ndarray, rows: np.ndarray, n_rows: int) -> np.ndarray:
        """n_rows x 4 x n counts of the codes of `samples` (in rows `rows`) that have bit j, for every j."""
        block = self.bits[samples].astype(np.float32)
        return (_indicator(rows * 4 + self.code[samples], n_rows * 4) @ block).reshape(n_rows, 4, block.shape[1])

    def _terms(self, ones: np.ndarray, totals: np.ndarray) -> np.ndarray:
        """S x n: the summand of N I(X_in; X_out | state, bit j) over both halves of each state."""
        return self._half(ones) + self._half(totals[:, :, None] - ones)

    def _half(self, c: np.ndarray) -> np.ndarray:
        """sum_ab c_ab log c_ab + c log c - sum_a c_a log c_a - sum_b c_b log c_b (codes a * 2 + b)."""
        c = c.astype(np.intp)
        xlx = self.xlx
        in0, in1, out0, out1 = c[:, 0] + c[:, 1], c[:, 2] + c[:, 3], c[:, 0] + c[:, 2], c[:, 1] + c[:, 3]
        return xlx[c].sum(axis=1) + xlx[in0 + in1] - xlx[in0] - xlx[in1] - xlx[out0] - xlx[out1]


@dataclass
class RelaySearch:
    """Greedy shrinking of one layer for one class.

    Attributes
    ----------
    order : np.ndarray
        Neurons in the order they were moved from Y_R to Y_0.
    curve : np.ndarray
        n + 1 values: curve[i] = I_R of the Y_R left after i moves (curve[0]: the whole layer; curve[n] = 0).
    module : np.ndarray
        The relay module (sorted): the last neurons of `order`, read by `module_size`.
    score : np.ndarray
        Per neuron, the reference's aggregated relay score (``removalIntoVec``, see `relay_score`).
    """

    order: np.ndarray
    curve: np.ndarray
    module: np.ndarray
    score: np.ndarray


def greedy_relay(
    bits: np.ndarray,
    x_in: np.ndarray,
    x_out: np.ndarray,
    *,
    essential: float = ESSENTIAL,
    noise: float = NOISE,
    max_states: int | None = None,
    seed: int = 0,
) -> RelaySearch:
    """Hintze & Adami's Algorithm 1 for one class: shrink Y_R from the whole layer, one neuron at a time.

    Parameters
    ----------
    bits : np.ndarray
        N x n booleans: the layer, binarised.
    x_in, x_out : np.ndarray
        N 0/1 values: the class's X_in and X_out (rows of `class_indicators`).
    essential, noise : float
        The stopping rule's thresholds (see `module_size`).
    max_states : int, optional
        Coarse-grain Y_0's and L's joint states to at most this many (k-means; default: exact states).
    seed : int
        For the coarse-graining's k-means.

    Returns
    -------
    RelaySearch

    Notes
    -----
    Every step moves to Y_0 the neuron whose move leaves the largest I_R(Y_R) = I(X_in; X_out | Y_0)
    - I(X_in; X_out | L) (ties to 1e-12 bits: the lowest index), as the reference code's ``max``. Only
    the states of Y_0 in which X_in and X_out both vary can hold conditional information, before or after
    a refinement, and a refinement never makes a state mix again; so the greedy keeps, per such state,
    the (X_in, X_out) counts of its samples with each candidate bit (`_MixedStates`), and every
    candidate's score is a sum over those states of N I = sum c log c terms, read from a table. A move
    recounts only the smaller half of each state it splits (the other half is the rest); a state it does
    not split, and a move that splits none (a dead neuron, or one constant within each state), costs
    nothing. With coarse-grained states (`max_states`), Y_0 is re-clustered and recounted after every move.

    References
    ----------
    .. [1] Hintze & Adami (2023), arXiv:2301.00911, Algorithm 1; ``singleShrinkingDecompositionInformation``.
    """
    n = bits.shape[1]
    floor = conditional_mi(x_in, x_out, joint_states(bits, max_states, seed))[0]  # I(X_in; X_out | L)
    state = np.zeros(len(bits), dtype=np.int64)
    mixed, moved, order = _MixedStates(bits, x_in, x_out, state), np.zeros(n, dtype=bool), []
    curve = [conditional_mi(x_in, x_out, state)[0] - floor]
    for step in range(n):
        kept = mixed.scores() - floor
        best = int(np.argmax(np.where(moved, -np.inf, np.round(kept, TIE))))
        order.append(best)
        moved[best], curve = True, curve + [kept[best]]
        if step == n - 1:  # Y_0 = L: nothing left to score
            break
        if max_states is None:
            mixed.move(best)
        else:
            coarse = joint_states(bits[:, np.sort(order)], max_states, seed)
            mixed = _MixedStates(bits, x_in, x_out, coarse)
    order, curve = np.asarray(order), np.asarray(curve)
    curve[-1] = 0.0  # Y_0 = L: zero by definition, not the rounding of two equal sums
    module = np.sort(order[n - module_size(curve, essential, noise) :])
    return RelaySearch(order=order, curve=curve, module=module, score=relay_score(order, curve))


def module_size(curve: np.ndarray, essential: float = ESSENTIAL, noise: float = NOISE) -> int:
    """How many of the last neurons of a greedy order form the relay module (the stopping rule).

    Scanning the order backwards from its last neuron, a neuron joins the module while its move was costly:
    it removed at least `essential` of the I_R left before it, curve[i] - curve[i + 1] >= essential * curve[i],
    or there was too little I_R left to judge, curve[i] <= noise * curve[0]. The first cheap move (a neuron
    redundant with the module, typically the last of another specialist whose partner already completed the
    "elimination" of the other classes) ends the module. The last neuron always belongs to it.

    Parameters
    ----------
    curve : np.ndarray
        The greedy's n + 1 values of I_R (`RelaySearch.curve`).
    essential : float
        The share of the remaining I_R a module neuron's move must cost.
    noise : float
        I_R left below this share of the whole layer's I_R is not judged.

    Returns
    -------
    int
        The module size, 1..n.

    Notes
    -----
    Designed by measurement on hidden layers of composite networks (`bench/relay_paper.py`), against the
    paper's reading (the last |specialist| neurons, the size known) and the smallest Y_R keeping 90 % of
    the full I_R, which keeps most of the layer because of information by elimination; the numbers are
    in docs/groundtruth.md ("Method notes").
    """
    cost = curve[:-1] - curve[1:]
    costly = (cost >= essential * curve[:-1]) | (curve[:-1] <= noise * curve[0])
    costly[-1] = True
    cut = np.flatnonzero(~costly)
    return len(costly) - (int(cut[-1]) + 1 if len(cut) else 0)


def relay_score(order: np.ndarray, curve: np.ndarray) -> np.ndarray:
    """The reference's ``removalIntoVec``: after move i (i = 1..n) every neuron still in Y_R gains
    I_R(after move 1) - I_R(after move i); summed over the moves.

    References
    ----------
    .. [1] Hintze & Adami (2023), arXiv:2301.00911; ``removalIntoVec`` in the reference code,
       whose baseline ``H[0]`` is the I_R left after the first move.
    """
    gains = np.cumsum(curve[1] - curve[1:])  # gains[k - 1]: what a neuron still in Y_R after move k has gained
    score = np.empty(len(order))
    score[order] = np.concatenate([[0.0], gains[:-1]])  # order[k] is in Y_R after moves 1..k
    return score
