"""Clustering metrics: accuracy under the best one-to-one matching (Hungarian), many-to-one
accuracy (for more clusters than classes), NMI and ARI (scikit-learn)."""

import numpy as np
import torch

from ..defaults import COLLAPSE_THRESHOLD
from ..errors import DataError

# scikit-learn and scipy.optimize are imported where they are used: together they cost over a second at
# import, which every ``pyro-gmvae --help`` would pay (tests/test_startup.py)


def _as_numpy(a):
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a).reshape(-1)


def _pair(labels, clusters, what):
    """``labels`` and ``clusters`` as flat arrays of one length, at least one each, or a :class:`DataError`
    naming the lengths."""
    labels, clusters = _as_numpy(labels), _as_numpy(clusters)
    if labels.size != clusters.size:
        raise DataError(f"{what} got {labels.size} labels but {clusters.size} clusters; pass one cluster per "
                        "labelled datapoint")
    if labels.size == 0:
        raise DataError(f"{what} got no datapoints (0 labels and 0 clusters); pass at least one")
    return labels, clusters


def hungarian_accuracy(labels, clusters):
    """Share of points whose cluster maps to their label under the best one-to-one map."""
    from scipy.optimize import linear_sum_assignment
    from sklearn.metrics.cluster import contingency_matrix

    labels, clusters = _pair(labels, clusters, "hungarian_accuracy")
    table = contingency_matrix(clusters, labels)
    rows, cols = linear_sum_assignment(table, maximize=True)
    return float(table[rows, cols].sum() / labels.size)


def many_to_one_accuracy(labels, clusters):
    """Each cluster takes its majority label (several clusters may share a label).

    The GMVAE code labels each cluster by its single most confident example instead; the majority
    rule is the common choice and never scores lower on the same clustering."""
    from sklearn.metrics.cluster import contingency_matrix

    labels, clusters = _pair(labels, clusters, "many_to_one_accuracy")
    table = contingency_matrix(clusters, labels)
    return float(table.max(axis=1).sum() / labels.size)


def most_confident_accuracy(labels, responsibilities):
    """The GMVAE code's many-to-one protocol: each cluster takes the label of the datapoint it claims
    most confidently (highest responsibility), and every point is scored by its most probable cluster."""
    labels = _as_numpy(labels)
    resp = responsibilities.detach().cpu().numpy() if hasattr(responsibilities, "detach") else \
        np.asarray(responsibilities)
    cluster_label = labels[resp.argmax(axis=0)]  # (K,): the label of each cluster's most confident point
    return float((cluster_label[resp.argmax(axis=1)] == labels).mean())


def clustering_scores(labels, clusters):
    """``{"acc", "acc_many_to_one", "nmi", "ari"}`` of predicted ``clusters`` against ``labels``."""
    from sklearn.metrics import adjusted_rand_score, normalized_mutual_info_score

    labels, clusters = _pair(labels, clusters, "clustering_scores")
    return {
        "acc": hungarian_accuracy(labels, clusters),
        "acc_many_to_one": many_to_one_accuracy(labels, clusters),
        "nmi": float(normalized_mutual_info_score(labels, clusters)),
        "ari": float(adjusted_rand_score(labels, clusters)),
    }


def active_clusters(responsibilities, threshold=COLLAPSE_THRESHOLD):
    """Number of clusters whose share of the total responsibility exceeds ``threshold``."""
    share = responsibilities.mean(0) if responsibilities.dim() == 2 else responsibilities
    return int((share > threshold).sum())


def used_clusters(responsibilities, threshold=COLLAPSE_THRESHOLD):
    """Number of clusters that are the most probable cluster of more than ``threshold`` of the points.

    Unlike :func:`active_clusters` this also sees the degenerate case where every posterior is close
    to uniform (all clusters keep a share of the responsibility, but few win any point)."""
    k = responsibilities.shape[-1]
    counts = torch.bincount(responsibilities.argmax(-1), minlength=k).to(responsibilities.dtype)
    return int((counts / responsibilities.shape[0] > threshold).sum())


def cluster_information(responsibilities):
    """Mutual information (nats) between the data and the cluster under the posteriors:
    ``H(mean_n r_n) - mean_n H(r_n)``. Zero when every point has the same posterior (a collapsed
    mixture); at most ``log K``."""
    r = responsibilities.double().clamp_min(1e-300)
    mean = r.mean(0)
    return float(-(mean * mean.log()).sum() + (r * r.log()).sum(-1).mean())
