"""InnerSightNet's aggregation: per layer, a Gaussian mixture on each neuron's representation
attributes, with soft memberships; the output layer is one community per class."""

import math

import numpy as np
from scipy.spatial.distance import pdist, squareform
from sklearn.mixture import GaussianMixture

from ..communities import Found, Membership, drop_empty, silhouette
from ..context import MethodContext
from .options import InnerSightOptions


def find(context: MethodContext, options: InnerSightOptions) -> Found:
    """GMM communities of every layer but the output (which the analysis makes one community per class):
    each neuron's attributes are its class-conditional mean profile, z-scored and signed so that its
    strongest deviation is positive (optionally with its positive and negative parts), K chosen by
    silhouette (or BIC) over `k_range`.

    Parameters
    ----------
    context : MethodContext
        Its layers' class means and activations are used.
    options : InnerSightOptions

    Returns
    -------
    Found
        One soft membership per layer.

    References
    ----------
    .. [1] Lan, Xiao, Xi, Wen, Yang, "Inner Information Analysis Algorithm for Deep Neural Network
       based on Community" (InnerSightNet), ICLR 2025, https://openreview.net/forum?id=awz1JPyXNK.
    """
    layers = context.layers[:-1]
    return Found(memberships=[gmm_membership(layer.index, layer.class_means, layer.acts, options) for layer in layers])


def attributes(class_means: np.ndarray, acts: np.ndarray) -> np.ndarray:
    """Each neuron's representation attributes.

    Parameters
    ----------
    class_means : np.ndarray
        C x n class-conditional mean activations of the layer's n neurons.
    acts : np.ndarray
        N x n activations.

    Returns
    -------
    np.ndarray
        n x (C + 3): the class profile, z-scored across classes and signed so that its strongest
        deviation is positive, then the share of samples where the neuron is positive and the
        (z-scored across neurons) mean sizes of its positive and negative parts.

    References
    ----------
    .. [1] Lan et al., InnerSightNet, ICLR 2025, https://openreview.net/forum?id=awz1JPyXNK.
    """
    profile = class_means.T
    profile = (profile - profile.mean(axis=1, keepdims=True)) / np.maximum(profile.std(axis=1, keepdims=True), 1e-12)
    strongest = np.take_along_axis(profile, np.abs(profile).argmax(axis=1)[:, None], axis=1)
    profile = profile * np.where(strongest < 0, -1.0, 1.0)
    positive = np.maximum(acts, 0).mean(axis=0)
    negative = np.minimum(acts, 0).mean(axis=0)
    parts = np.column_stack([(acts > 0).mean(axis=0), _z(positive), _z(negative)])
    return np.column_stack([profile, parts])


def _z(values: np.ndarray) -> np.ndarray:
    return (values - values.mean()) / max(values.std(), 1e-12)


def gmm_membership(
    layer_index: int, class_means: np.ndarray, acts: np.ndarray, options: InnerSightOptions
) -> Membership:
    """Soft GMM membership of one layer's neurons, K in `k_range` chosen by `options.criterion`.

    Parameters
    ----------
    layer_index : int
    class_means, acts : np.ndarray
        As for `attributes`.
    options : InnerSightOptions

    Returns
    -------
    Membership
        p[neuron, community], components nobody is most likely in dropped.

    Notes
    -----
    On composite networks silhouette recovers the specialists where the class profiles separate
    them, BIC under-splits, and the positive/negative-part attributes lower ARI, so they are off by
    default (the numbers: docs/groundtruth.md, "Method notes").

    References
    ----------
    .. [1] Rousseeuw, "Silhouettes", J. Comput. Appl. Math. 20 (1987), doi:10.1016/0377-0427(87)90125-7.
    """
    features = attributes(class_means, acts)
    if not options.parts:
        features = features[:, : class_means.shape[0]]
    best = None
    distances = squareform(pdist(features)) if options.criterion == "silhouette" else None
    for k in k_range(len(features), class_means.shape[0]):
        gmm = GaussianMixture(
            k,
            covariance_type="diag",
            init_params="k-means++",
            n_init=options.starts,
            reg_covar=1e-3,
            random_state=options.seed,
        ).fit(features)
        score = _score(gmm, features, distances)
        if best is None or score > best[0]:
            best = (score, gmm)
    p = np.ones((len(features), 1)) if best is None else best[1].predict_proba(features)
    return Membership(NAME, layer_index, drop_empty(p))


def k_range(n: int, n_classes: int) -> range:
    """K from 2 to max(ceil(sqrt(n)), 2 x classes), below n: wide enough for one module per class
    (and for classes split in two) in a narrow layer."""
    return range(2, min(n - 1, max(math.ceil(math.sqrt(n)), 2 * n_classes)) + 1)


def _score(gmm: GaussianMixture, features: np.ndarray, distances: np.ndarray | None) -> float:
    """Higher is better: the silhouette of the hard assignment (from the features' `distances`), or
    minus the BIC (no distances)."""
    if distances is None:
        return -gmm.bic(features)
    labels = gmm.predict(features)
    return silhouette(distances, labels) if 1 < len(np.unique(labels)) < len(features) else -1.0


NAME = "innersight"
