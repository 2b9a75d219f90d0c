"""The guide ``q(c | x) q(h | x, c)`` of every cluster inference strategy but ``exact``, and
:func:`build_guide`, which picks the guide of a :class:`~pyro_gmvae.config.ModelConfig`."""

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine
from torch import nn

from ...errors import ConfigError
from ...models.priors import select
from ...registry import CLUSTER_INFERENCE
from ...sites import CLUSTER, DATA_PLATE
from ..amortized import AmortizedGuide
from .relaxation import relax_clusters


class ClusterGuide(AmortizedGuide):
    """``q(c | x) q(h | x, c)`` on one encoder trunk: the guide of every strategy but ``exact``.

    ``q(c | x)`` is ``Categorical(logits=cluster_logits(f))`` on the trunk's features ``f = encoder(x)``
    (zero-initialised: uniform at the start); a site in ``conditioned`` (those whose prior depends on the
    cluster: ``z``) is read by its head from ``f + e_c``, ``e_c = select(cluster_embedding, c)``; for a linear
    head that is one-hot ``c`` concatenated to the features. The embedding starts at zero, so ``q(h | x, c)`` starts as the plain ``q(h | x)``
    (pretraining trains that).

    Called as ``guide(x)`` (evaluation, responsibilities, the marginal likelihood) it samples the continuous
    latents only, from ``sum_c q(c | x) q(h | x, c)``; ``guide(x, strategy)`` is the guide as trained.
    """

    def __init__(self, encoder, sites, head, num_clusters, conditioned, cluster_inference, head_options=None):
        super().__init__(encoder, sites, head, head_options)
        self.cluster_inference = cluster_inference
        self.num_clusters = num_clusters
        self.conditioned = tuple(conditioned)
        self.cluster_logits = nn.Linear(encoder.out_dim, num_clusters)
        nn.init.zeros_(self.cluster_logits.weight)
        nn.init.zeros_(self.cluster_logits.bias)
        self.cluster_embedding = nn.Parameter(torch.zeros(num_clusters, encoder.out_dim))
        self.strategy_modules = nn.ModuleDict(CLUSTER_INFERENCE[cluster_inference].guide_modules(encoder.out_dim))

    def cluster_dist(self, x):
        """``q(c | x)``."""
        return dist.Categorical(logits=self.cluster_logits(self.encoder(x)))

    def site_dists(self, x):
        """``{site: q(site | x)}`` with the cluster summed out: a mixture over ``q(c | x)`` for the sites
        conditioned on it."""
        h = self.encoder(x)
        weights = dist.Categorical(logits=self.cluster_logits(h))
        out = {}
        for name in self.sites:
            if name in self.conditioned:
                components = self.heads[name](h.unsqueeze(-2) + self.cluster_embedding)  # batch (..., K)
                out[name] = dist.MixtureSameFamily(weights, components)
            else:
                out[name] = self.heads[name](h)
        return out

    def forward(self, x, strategy=None):
        """``guide(x)``: the continuous latents from ``q(h | x)``, the cluster summed out (evaluation);
        ``guide(x, strategy)``: the guide as trained, with the cluster site that ``strategy`` samples."""
        if strategy is None:
            return super().forward(x)
        return self.training_guide(x, strategy)

    def given_cluster(self, x, cluster):
        """``q(h | x, c)`` at the given clusters (the warm-up, whose model observes the cluster): the guide as
        trained, with no cluster site."""
        return self.training_guide(x, _GivenCluster(cluster))

    def training_guide(self, x, strategy):
        h = self.encoder(x)
        logits = self.cluster_logits(h)
        values = {}
        with pyro.plate(DATA_PLATE, x.shape[0]):
            for name in self.sites:
                if name not in self.conditioned:
                    values[name] = pyro.sample(name, self.heads[name](h))
            cluster = strategy.sample_cluster(self, h, logits)
            features = h + select(self.cluster_embedding, cluster)
            for name in self.conditioned:
                values[name] = pyro.sample(name, self.heads[name](features))
        return values


class _GivenCluster:
    """A stand-in strategy for :meth:`ClusterGuide.given_cluster`: the cluster is given, not sampled."""

    def __init__(self, cluster):
        self.cluster = cluster

    def sample_cluster(self, guide, h, logits):
        return self.cluster


class TrainingGuide(nn.Module):
    """``guide(x, strategy)`` as a module (its parameters are the guide's), the guide that Pyro's ELBOs run in
    training. It calls the guide (not a method of it), so that the PyroModule's parameters go through Pyro's
    param store, as JIT-compiled ELBOs need."""

    def __init__(self, guide, strategy):
        super().__init__()
        self.guide = guide
        self.strategy = strategy

    def forward(self, x):
        return self.guide(x, self.strategy)


def cluster_dependent_sites(prior, sites):
    """The sites of ``sites`` whose prior distribution depends on the cluster: a trace of ``prior`` with the
    cluster enumerated, looking for the enumeration dim in each site's batch shape."""
    with torch.no_grad(), pyro.plate(DATA_PLATE, 2):
        trace = poutine.trace(poutine.enum(prior, first_available_dim=-2)).get_trace()
    dim = trace.nodes[CLUSTER]["infer"]["_enumerate_dim"]
    out = []
    for name in sites:
        shape = trace.nodes[name]["fn"].batch_shape
        if len(shape) >= -dim and shape[dim] > 1:
            out.append(name)
    return tuple(out)


def build_guide(config, prior, encoder):
    """The guide of a :class:`~pyro_gmvae.config.ModelConfig`: the plain :class:`AmortizedGuide` for
    ``exact``, a :class:`ClusterGuide` otherwise (checked against the prior, and for ``relaxed``, run once
    with a relaxed cluster)."""
    name = config.cluster_inference
    CLUSTER_INFERENCE.check(name)
    strategy = CLUSTER_INFERENCE[name]
    strategy.check_prior(config.prior_name, tuple(getattr(prior, "cluster_sites", ())))
    options = {"flow_layers": config.flow_layers} if config.flow_layers is not None else {}
    if not strategy.guided:
        return AmortizedGuide(encoder, prior.guide_sites, config.guide, options)
    conditioned = cluster_dependent_sites(prior, prior.guide_sites)
    if name == "relaxed":
        _check_relaxable(prior, config.prior_name)
    return ClusterGuide(encoder, prior.guide_sites, config.guide, prior.num_clusters, conditioned, name, options)


def _check_relaxable(prior, prior_name):
    try:
        with torch.no_grad(), pyro.plate(DATA_PLATE, 2):
            relax_clusters(prior, temperature=1.0)()
    except (IndexError, RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"the prior {prior_name!r} cannot take a relaxed cluster (a point of the simplex, as "
                          f"log-weights): {' '.join(str(e).split())[:200]}. Index its per-cluster tables with "
                          "pyro_gmvae.models.priors.select(table, cluster), or use another "
                          "--cluster-inference") from None
