"""Discretised information, in bits: equal-frequency codes per neuron, Miller-Madow entropies, and
all-pairs mutual information between two layers from one matrix product of one-hot codes.

A neuron is cut into at most `bins` bins at its own quantiles; tied quantiles (the zeros of a ReLU)
collapse bins, so some of the `bins` codes stay empty. A neuron with one distinct value is constant.
"""

import math

import numpy as np
import torch

DEFAULT_BINS = 8
BLOCK = 512  # neurons per side of one block of pairs: bounds memory whatever the layer widths


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
    counts = torch.as_tensor(bin_counts(codes, bins), dtype=torch.float64)
    return _entropy_from_counts(counts, codes.shape[0], miller_madow, dims=(1,)).numpy()


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
    block: int = BLOCK,
) -> np.ndarray:
    """I(u; v) in bits for every column u of `codes_u` and v of `codes_v` (same samples): n_u x n_v.

    The joint counts of a block of pairs are the blocks of O_u^T O_v, with O the one-hot codes;
    counts are exact in float32 (integers below 2^24) and entropies are taken in float64.
    """
    n_samples = codes_u.shape[0]
    h_u = torch.as_tensor(entropy_bits(codes_u, bins, miller_madow))
    h_v = torch.as_tensor(entropy_bits(codes_v, bins, miller_madow))
    cu, cv = (torch.as_tensor(c, device=device) for c in (codes_u, codes_v))
    out = np.empty((cu.shape[1], cv.shape[1]))
    for u0 in range(0, cu.shape[1], block):
        ou = _one_hot(cu[:, u0 : u0 + block], bins)
        for v0 in range(0, cv.shape[1], block):
            ov = _one_hot(cv[:, v0 : v0 + block], bins)
            joint = (ou.T @ ov).to(torch.float64)
            joint = joint.view(ou.shape[1] // bins, bins, ov.shape[1] // bins, bins)
            h_uv = _entropy_from_counts(joint, n_samples, miller_madow, dims=(1, 3)).cpu()
            out[u0 : u0 + block, v0 : v0 + block] = (
                h_u[u0 : u0 + block, None] + h_v[None, v0 : v0 + block] - h_uv
            ).numpy()
    return out


def _one_hot(codes: torch.Tensor, bins: int) -> torch.Tensor:
    """N x (n * bins) float32 indicator of each neuron's code."""
    n_samples, n = codes.shape
    index = codes.long() + torch.arange(n, device=codes.device) * bins
    return torch.zeros(n_samples, n * bins, device=codes.device).scatter_(1, index, 1.0)


def _entropy_from_counts(counts: torch.Tensor, n_samples: int, miller_madow: bool, dims) -> torch.Tensor:
    """Entropy in bits of the histograms in `counts` (cells along `dims`), from sum c log c."""
    c_log_c = torch.special.xlogy(counts, counts).sum(dim=dims)
    entropy = (math.log(n_samples) - c_log_c / n_samples) / math.log(2)
    if miller_madow:
        occupied = (counts > 0).sum(dim=dims).to(torch.float64)
        entropy = entropy + (occupied - 1) / (2 * n_samples * math.log(2))
    return entropy
