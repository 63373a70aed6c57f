"""Discretised information, in bits: equal-frequency codes per neuron, Miller-Madow entropies, and
all-pairs mutual information between two layers from one matrix product of one-hot codes.

A neuron is cut into at most `bins` bins at its own quantiles; tied quantiles (the zeros of a ReLU)
collapse bins, so some of the `bins` codes stay empty. A neuron with one distinct value is constant.
"""

import math

import numpy as np
import torch

DEFAULT_BINS = 8
MAX_BINS = np.iinfo(np.uint8).max + 1  # codes are uint8: 0..255
BLOCK = 512  # neurons per side of one block: bounds memory whatever the layer widths
JOINT_CELLS = 4096  # at most this many (neuron, code) cells per side of one block's joint table (128 MiB)


def discretize(acts: np.ndarray | torch.Tensor, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Codes in 0..bins-1 (N x n, uint8): the number of the neuron's quantile edges below the value.
    Computed BLOCK neurons at a time, so a layer is never copied whole."""
    codes = np.empty(acts.shape, dtype=np.uint8)
    for start in range(0, acts.shape[1], BLOCK):
        codes[:, start : start + BLOCK] = _codes(acts[:, start : start + BLOCK], bins)
    return codes


def _codes(acts: np.ndarray | torch.Tensor, bins: int) -> np.ndarray:
    a = torch.as_tensor(acts).to(torch.float64)
    n_samples = a.shape[0]
    ordered = a.sort(dim=0).values
    position = torch.arange(1, bins, dtype=torch.float64, device=a.device) / bins * (n_samples - 1)
    low = position.floor().long()
    high = (low + 1).clamp(max=n_samples - 1)
    frac = (position - low)[:, None]
    edges = ordered[low] * (1 - frac) + ordered[high] * frac  # (bins-1) x n, ascending per neuron
    codes = torch.searchsorted(edges.T.contiguous(), a.T.contiguous(), right=False)
    return codes.T.to(torch.uint8).cpu().numpy()


def entropy_bits(codes: np.ndarray, bins: int = DEFAULT_BINS, miller_madow: bool = True) -> np.ndarray:
    """Entropy of each column of `codes`, in bits (plug-in, plus the Miller-Madow correction)."""
    return _entropy_bits(bin_counts(codes, bins), codes.shape[0], miller_madow)


def _entropy_bits(counts: np.ndarray, n_samples: int, miller_madow: bool) -> np.ndarray:
    return _entropy_from_counts(torch.as_tensor(counts, dtype=torch.float64), n_samples, miller_madow, (1,)).numpy()


def bin_counts(codes: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Samples per code for each neuron (n x bins)."""
    n = codes.shape[1]
    offsets = codes.astype(np.int64) + np.arange(n)[None, :] * bins
    return np.bincount(offsets.ravel(), minlength=n * bins).reshape(n, bins)


def mutual_information(
    codes_u: np.ndarray,
    codes_v: np.ndarray,
    bins: int = DEFAULT_BINS,
    *,
    miller_madow: bool = True,
    device: str | torch.device = "cpu",
    block: int | None = None,
) -> np.ndarray:
    """I(u; v) in bits for every column u of `codes_u` and v of `codes_v` (same samples): n_u x n_v.

    The joint counts of a block of pairs are the blocks of O_u^T O_v, with O the one-hot codes. Only
    the codes a neuron takes, less the last of them, get a column of O: the counts in a neuron's last
    code are its marginal counts less the rest (an 8-bin ReLU neuron whose zeros fill the first
    quantiles takes 5 codes: 4 columns instead of 8). Counts are exact in float32 (integers below 2^24)
    and entropies are taken in float64, of the whole joint tables. A block holds `block` neurons per
    side, by default as many as keep a joint table to JOINT_CELLS cells per side (512 at 8 bins, 16
    at 256), so memory is bounded whatever the bins and the layer widths.
    """
    block = block or max(1, min(BLOCK, JOINT_CELLS // bins))
    n_samples = codes_u.shape[0]
    counts_u, counts_v = bin_counts(codes_u, bins), bin_counts(codes_v, bins)
    h_u, h_v = (torch.as_tensor(_entropy_bits(c, n_samples, miller_madow)) for c in (counts_u, counts_v))
    cu, cv = (torch.as_tensor(c, device=device) for c in (codes_u, codes_v))
    out = np.empty((cu.shape[1], cv.shape[1]))
    for u0 in range(0, cu.shape[1], block):
        ou = _Coded(cu[:, u0 : u0 + block], counts_u[u0 : u0 + block])
        for v0 in range(0, cv.shape[1], block):
            joint = ou.joint(_Coded(cv[:, v0 : v0 + block], counts_v[v0 : v0 + block]))
            h_uv = _entropy_from_counts(joint, n_samples, miller_madow, dims=(1, 3)).cpu()
            out[u0 : u0 + block, v0 : v0 + block] = (
                h_u[u0 : u0 + block, None] + h_v[None, v0 : v0 + block] - h_uv
            ).numpy()
    return out


class _Coded:
    """A block of neurons' codes as the one-hot columns of the codes each takes, but its last."""

    def __init__(self, codes: torch.Tensor, counts: np.ndarray):
        n, bins = counts.shape
        self.counts = torch.as_tensor(counts, dtype=torch.float64, device=codes.device)  # n x bins
        last = bins - 1 - np.argmax(counts[:, ::-1] > 0, axis=1)  # each neuron's last code it takes
        self.last = torch.as_tensor(last, device=codes.device)
        taken = (counts > 0) & (np.arange(bins) != last[:, None])
        self.cells = torch.as_tensor(np.flatnonzero(taken), device=codes.device)  # column -> neuron * bins + code
        column = torch.full((n * bins + 1,), len(self.cells), device=codes.device)  # untaken cells: a spare column
        column[self.cells] = torch.arange(len(self.cells), device=codes.device)
        index = column[codes.long() + torch.arange(n, device=codes.device) * bins]
        spare = torch.zeros(len(codes), len(self.cells) + 1, device=codes.device).scatter_(1, index, 1.0)
        self.one_hot = spare[:, :-1]

    def joint(self, other: "_Coded") -> torch.Tensor:
        """Joint counts n_u x bins x n_v x bins (float64) of every pair of a neuron here and one of `other`."""
        (nu, bins), nv = self.counts.shape, len(other.counts)
        cells = (self.one_hot.T @ other.one_hot).to(torch.float64)
        joint = torch.zeros(nu * bins, nv * bins, dtype=torch.float64, device=cells.device)
        joint[self.cells[:, None], other.cells[None, :]] = cells
        joint = joint.view(nu, bins, nv, bins)
        # each v's last code: u's counts in a code less those in v's other codes (wrong in u's last code ...)
        joint[:, :, torch.arange(nv, device=cells.device), other.last] = self.counts[:, :, None] - joint.sum(dim=3)
        # ... which is v's counts less those in u's other codes
        rows = torch.arange(nu, device=cells.device)
        joint[rows, self.last] = 0
        joint[rows, self.last] = other.counts[None] - joint.sum(dim=1)
        return joint


def _entropy_from_counts(counts: torch.Tensor, n_samples: int, miller_madow: bool, dims) -> torch.Tensor:
    """Entropy in bits of the histograms in `counts` (cells along `dims`), from sum c log c."""
    c_log_c = torch.special.xlogy(counts, counts).sum(dim=dims)
    entropy = (math.log(n_samples) - c_log_c / n_samples) / math.log(2)
    if miller_madow:
        occupied = (counts > 0).sum(dim=dims).to(torch.float64)
        entropy = entropy + (occupied - 1) / (2 * n_samples * math.log(2))
    return entropy
