"""Discretised information: equal-frequency codes per neuron and Miller-Madow entropies, in bits.

A neuron is cut into at most `bins` bins at its own quantiles; tied quantiles (the zeros of a ReLU)
collapse bins, so some of the `bins` codes stay empty. A neuron with one distinct value is constant.
"""

import math

import numpy as np
import torch

DEFAULT_BINS = 8


def discretize(acts: np.ndarray | torch.Tensor, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Codes in 0..bins-1 (N x n, uint8): the number of the neuron's quantile edges below the value."""
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


def entropy_bits(codes: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Miller-Madow corrected entropy of each column of `codes`, in bits."""
    counts = bin_counts(codes, bins)
    n_samples = codes.shape[0]
    p = counts / n_samples
    with np.errstate(divide="ignore", invalid="ignore"):
        plugin = -np.where(p > 0, p * np.log2(p), 0.0).sum(axis=1)
    occupied = (counts > 0).sum(axis=1)
    return plugin + (occupied - 1) / (2 * n_samples * math.log(2))


def bin_counts(codes: np.ndarray, bins: int = DEFAULT_BINS) -> np.ndarray:
    """Samples per code for each neuron (n x bins)."""
    n = codes.shape[1]
    offsets = codes.astype(np.int64) + np.arange(n)[None, :] * bins
    return np.bincount(offsets.ravel(), minlength=n * bins).reshape(n, bins)
