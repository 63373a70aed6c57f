"""The deletion check of an attribution: delete input features (replace them by their mean; delete
input tokens from the sequence, `ingest.tokens`) in decreasing attribution order, and in random
order, and compare the areas under the accuracy curves. A good attribution loses accuracy faster,
so its area is smaller.

Each curve point is a forward pass over the samples (17 points, 6 curves), so on a probe set larger
than `AnalysisOptions.deletion_samples` the check runs on a stratified subset of that size (stored as the
metric `deletion_samples`).
"""

import numpy as np
import torch
from torch import nn

from neurocypher.progress import progress_bar

from .closing import predict_closed
from .neuronize import token_input


def deletion_check(
    model: nn.Module,
    X: np.ndarray,
    labels: np.ndarray,
    predictions: np.ndarray,
    attribution: np.ndarray,
    *,
    steps: int = 16,
    repeats: int = 5,
    seed: int = 0,
    batch_size: int = 256,
) -> dict[str, float]:
    """Areas under the accuracy-vs-fraction-deleted curves. Each sample deletes features in the
    attribution order of the class the model predicted for it; random orders are averaged."""
    n_features = attribution.shape[1]
    counts = np.unique(np.linspace(0, n_features, steps + 1).round().astype(int))
    by_attribution = _ranks(-attribution)[predictions]  # N x features: deletion position
    rng = np.random.default_rng(seed)
    with progress_bar(len(counts) * (1 + repeats), "deletion check") as advance:
        ours = _curve(model, X, labels, by_attribution, counts, batch_size, advance)
        random = np.mean(
            [
                _curve(
                    model,
                    X,
                    labels,
                    np.broadcast_to(rng.permutation(n_features), by_attribution.shape),
                    counts,
                    batch_size,
                    advance,
                )
                for _ in range(repeats)
            ],
            axis=0,
        )
    fraction = counts / n_features
    return {
        "deletion_auc_attribution": float(np.trapezoid(ours, fraction)),
        "deletion_auc_random": float(np.trapezoid(random, fraction)),
    }


def stratified_subset(labels: np.ndarray, size: int, seed: int = 0) -> np.ndarray:
    """Sorted indices of about `size` samples, each class in its share of `labels` (its round(share x
    size) samples, at least one), drawn at random with `seed`; all samples when `size` is 0 or at
    least their number."""
    if not size or size >= len(labels):
        return np.arange(len(labels))
    order = np.random.default_rng(seed).permutation(len(labels))
    by_class = order[np.argsort(labels[order], kind="stable")]  # each class's samples in random order
    counts = np.bincount(labels)
    rank = np.arange(len(labels)) - np.repeat(np.cumsum(counts) - counts, counts)  # place within its class
    quota = np.maximum(np.round(counts * size / len(labels)), counts > 0)
    return np.sort(by_class[rank < np.repeat(quota, counts)])


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Position of each column in its row's ascending order."""
    ranks = np.empty(scores.shape, dtype=np.int64)
    np.put_along_axis(ranks, np.argsort(scores, axis=1, kind="stable"), np.arange(scores.shape[1])[None, :], axis=1)
    return ranks


def _curve(model, X, labels, ranks, counts, batch_size, advance) -> np.ndarray:
    accuracy = []
    for k in counts:
        accuracy.append((predict_closed(model, _deleted(model, X, ranks < k), [], batch_size) == labels).mean())
        advance()
    return np.asarray(accuracy)


def _deleted(model, X: np.ndarray, drop: np.ndarray) -> np.ndarray:
    """X with each sample's input neurons where `drop` is True deleted: features set to their mean,
    tokens removed."""
    tokens = token_input(model)
    if tokens is not None:
        return tokens.delete(torch.from_numpy(X), torch.from_numpy(drop)).numpy()
    flat = X.reshape(len(X), -1)
    return np.where(drop, flat.mean(axis=0), flat).astype(np.float32).reshape(X.shape)
