"""A two-level Gaussian mixture prior: super-clusters of clusters, both levels enumerated.

A hierarchical extension of VaDE's mixture prior (Jiang et al. 2017, arXiv:1611.05148; the paper has a
single level, this variant is ours): its mixture weights
factorise through a coarse level, so every datapoint gets a posterior at both levels. It is built
from the library's parts only: a prior registered by name (``"hierarchical-mixture"``) and a model
registered by name (``"hierarchical"``), joined with the usual decoder and amortized guide by
:func:`pyro_gmvae.models.build`. No existing model was edited to add it.

With both discrete sites enumerated and absent from the guide, :class:`~pyro.infer.TraceEnum_ELBO`
computes

.. math::

    \\mathcal{L}(x) = \\mathbb{E}_{q(z|x)}\\Big[\\log p(x|z)
        + \\log \\sum_{s=1}^{S} \\sum_{k=1}^{K} p(s)\\, p(k|s)\\, \\mathcal{N}(z; \\mu_k, \\sigma_k^2)
        - \\log q(z|x)\\Big],

the exact double sum, never sampled.
"""

import math

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from pyro.ops.indexing import Vindex
from torch import nn

from ..errors import ConfigError, check_positive
from ..registry import MODELS, PRIORS
from ..sites import CLUSTER, LATENT, SUPER_CLUSTER
from .priors import ENUM, GaussianComponents
from .specs import ModelSpec

#: Log-weight, relative to the group's clusters, of a cluster outside its super-cluster's group
#: after :meth:`HierarchicalMixturePrior.init_from_gmm` (``log 1e-6``).
_OUTSIDE_GROUP_LOGIT = math.log(1e-6)


def default_num_super_clusters(num_clusters):
    """``ceil(sqrt(K))``: the default number of super-clusters for ``K`` clusters."""
    return max(1, math.ceil(math.sqrt(num_clusters)))


def group_means(means, num_groups):
    """Group ``K`` component means into ``num_groups`` groups (Ward's agglomerative clustering);
    returns a length-``K`` integer array of group indices, numbered in order of first appearance.

    >>> group_means([[9, 9], [0, 0], [9, 10], [0, 1]], 2).tolist()
    [0, 1, 0, 1]
    """
    means = np.asarray(means, dtype=np.float64)
    k = means.shape[0]
    if num_groups == 1:
        return np.zeros(k, dtype=np.int64)
    if num_groups == k:
        return np.arange(k, dtype=np.int64)
    from sklearn.cluster import AgglomerativeClustering

    labels = AgglomerativeClustering(n_clusters=num_groups, linkage="ward").fit_predict(means)
    # number the groups in order of their first cluster, so that the result does not depend on sklearn's
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    return np.argsort(order)[labels].astype(np.int64)


class HierarchicalMixturePrior(GaussianComponents, PyroModule):
    """A two-level Gaussian mixture::

        super_cluster ~ Categorical(softmax(super_logits))                          (S values)
        cluster | super_cluster ~ Categorical(softmax(cluster_logits[super_cluster]))   (K values)
        z | cluster ~ Normal(loc[cluster], scale[cluster])

    Sites, coarse to fine: ``super_cluster`` and ``cluster`` (both enumerated), then ``z``
    (supplied by the guide). ``num_clusters`` is ``K`` (the finest level) and
    ``num_super_clusters`` is ``S`` (default ``ceil(sqrt(K))``).

    Memory: inside the data plate each enumerated site takes its own enumeration dim, so the
    model's log-factors are at most ``S x K`` per datapoint, the size of the joint table, and the
    sum over it is exact. ``pyro.markov`` would only help a *chain* of discrete variables, where
    it lets step ``t + 2`` reuse the enumeration dim of step ``t``; with two levels there is
    nothing to recycle.

    ``init_from_gmm(weights, means, scales)`` (called by VaDE's pretraining) copies a fitted
    ``K``-component GMM into the fine level and groups its means into ``S`` super-clusters
    (Ward's agglomerative clustering), so the super-level starts as a partition of the clusters.

    >>> prior = HierarchicalMixturePrior(latent_dim=2, num_clusters=6, num_super_clusters=2)
    >>> prior.cluster_sites, prior.num_clusters, prior.num_super_clusters
    (('super_cluster', 'cluster'), 6, 2)
    >>> prior.init_from_gmm([1 / 6] * 6, [[0, 0], [0, 1], [1, 0], [9, 9], [9, 10], [10, 9]], [[0.5, 0.5]] * 6)
    >>> prior.cluster_probs().argmax(0).tolist()  # the super-cluster of each cluster
    [0, 0, 0, 1, 1, 1]
    """

    cluster_sites = (SUPER_CLUSTER, CLUSTER)

    def __init__(self, latent_dim, num_clusters, noise_dim=None, hidden_dim=100, num_super_clusters=None,
                 **unused):
        super().__init__()
        num_super_clusters = default_num_super_clusters(num_clusters) if num_super_clusters is None \
            else num_super_clusters
        for name, value in [("latent_dim", latent_dim), ("num_clusters", num_clusters),
                            ("num_super_clusters", num_super_clusters)]:
            check_positive(name, value, integer=True)
        if num_super_clusters > num_clusters:
            raise ConfigError(f"num_super_clusters ({num_super_clusters}) cannot exceed num_clusters "
                              f"({num_clusters}); each super-cluster groups at least one cluster")
        self.latent_dim = latent_dim
        self.num_clusters = num_clusters
        self.num_super_clusters = num_super_clusters
        self.guide_sites = {LATENT: latent_dim}
        self.super_logits = nn.Parameter(torch.zeros(num_super_clusters))
        # random rows: with equal rows every super-cluster would have the same posterior forever
        self.cluster_logits = nn.Parameter(torch.randn(num_super_clusters, num_clusters))
        self._init_components(num_clusters, latent_dim)

    def cluster_probs(self):
        """``p(super_cluster, cluster)`` as an ``(S, K)`` table."""
        return self.super_logits.softmax(-1)[:, None] * self.cluster_logits.softmax(-1)

    def super_cluster_dist(self):
        return dist.Categorical(logits=self.super_logits)

    def cluster_dist(self, super_cluster):
        return dist.Categorical(logits=Vindex(self.cluster_logits)[..., super_cluster, :])

    def forward(self):
        super_cluster = pyro.sample(SUPER_CLUSTER, self.super_cluster_dist(), infer=ENUM)
        cluster = pyro.sample(CLUSTER, self.cluster_dist(super_cluster), infer=ENUM)
        return pyro.sample(LATENT, self.z_dist(cluster))

    @torch.no_grad()
    def init_from_gmm(self, weights, means, scales):
        """Copy a diagonal ``K``-component GMM into the fine level and group it into ``S`` super-clusters.

        With groups ``G_s`` of the means, ``p(s) = sum_{k in G_s} w_k`` and ``p(k | s) = w_k / p(s)``
        inside the group (about ``1e-6`` relative weight outside it), so the marginal ``p(k)`` is the
        GMM's ``w_k``.
        """
        p = self.loc
        w = torch.as_tensor(np.asarray(weights), dtype=p.dtype, device=p.device).clamp_min(1e-6)
        w = w / w.sum()
        groups = torch.as_tensor(group_means(means, self.num_super_clusters), device=p.device)
        member = groups[None, :] == torch.arange(self.num_super_clusters, device=p.device)[:, None]  # (S, K)
        self.super_logits.copy_((member * w).sum(-1).log())
        self.cluster_logits.copy_(torch.where(member, w.log(), w.log() + _OUTSIDE_GROUP_LOGIT))
        self._set_components(np.asarray(means), np.asarray(scales))


PRIORS.builtin("hierarchical-mixture", HierarchicalMixturePrior)
MODELS.builtin("hierarchical", ModelSpec(
    "hierarchical-mixture", pretrain_epochs=50,
    description="two-level VaDE: super-clusters of Gaussian clusters, both levels enumerated"))
