"""Priors over the continuous latent ``z``: the piece a researcher swaps.

A prior is a :class:`~pyro.nn.PyroModule` called inside the model's data plate. It samples its
sites and returns the latent ``z`` that the decoder reads. It declares

- ``guide_sites``: the continuous sites a guide must supply, ``{name: dim}``;
- ``cluster_sites``: its enumerated discrete sites (empty for a prior without clusters);
- ``num_clusters``: the number of values of the finest cluster site (1 if none).

Discrete sites are marked ``infer={"enumerate": "parallel"}``: :class:`~pyro.infer.TraceEnum_ELBO`
sums them out exactly and they are never sampled in training (unless a guide infers the cluster:
:mod:`pyro_gmvae.inference.cluster_inference`, whose ``relaxed`` strategy passes a point of the simplex,
which :func:`select` reads).

Scales are ``softplus(raw) + min_scale``: positive, bounded away from zero, and free of the
``exp`` overflow that plagues log-variance parameterisations. Mixture weights are
``softmax(logits)``: on the simplex by construction.
"""

import numpy as np
import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from pyro.ops.indexing import Vindex
from torch import nn

from ..errors import ConfigError, check_positive
from ..registry import PRIORS
from ..sites import CLUSTER, LATENT, NOISE

MIN_SCALE = 1e-3
ENUM = {"enumerate": "parallel"}


def inverse_softplus(y, min_scale=MIN_SCALE):
    """The raw value whose ``softplus(raw) + min_scale`` equals ``y``."""
    y = torch.as_tensor(y, dtype=torch.get_default_dtype()) - min_scale
    return y + torch.log(-torch.expm1(-y))


def positive(raw, min_scale=MIN_SCALE):
    return F.softplus(raw) + min_scale


def select(table, cluster):
    """The rows of ``table`` (``(..., K, d)``, one per cluster) that ``cluster`` picks.

    ``cluster`` is an integer index (enumerated or sampled), or a *relaxed* cluster: the log of weights
    on the simplex, ``(..., K)``, as the ``relaxed`` cluster inference samples it (an
    ``ExpRelaxedCategorical`` value, see :mod:`pyro_gmvae.inference.cluster_inference`); the rows are then
    mixed with those weights, so that a one-hot weight picks one row.

    >>> table = torch.tensor([[0.0, 1.0], [2.0, 3.0]])
    >>> select(table, torch.tensor(1)).tolist(), select(table, torch.tensor([0.5, 0.5]).log()).tolist()
    ([2.0, 3.0], [1.0, 2.0])
    """
    if cluster.is_floating_point():
        return (cluster.exp().unsqueeze(-1) * table).sum(-2)
    return Vindex(table)[..., cluster, :]


class StandardNormalPrior(PyroModule):
    """The plain VAE prior: ``z ~ N(0, I)``. No cluster variable."""

    cluster_sites = ()
    num_clusters = 1

    def __init__(self, latent_dim, num_clusters=1, **unused):
        super().__init__()
        check_positive("latent_dim", latent_dim, integer=True)
        self.latent_dim = latent_dim
        self.guide_sites = {LATENT: latent_dim}
        self.register_buffer("_zero", torch.zeros(latent_dim))

    def z_dist(self):
        return dist.Normal(self._zero, 1.0).to_event(1)

    def forward(self):
        return pyro.sample(LATENT, self.z_dist())


class GaussianComponents:
    """K diagonal Gaussian components ``z | cluster ~ Normal(loc[cluster], scale[cluster])``, shared by the
    mixture priors (mixed into a :class:`~pyro.nn.PyroModule`)."""

    def _init_components(self, num_clusters, latent_dim):
        self.loc = nn.Parameter(torch.randn(num_clusters, latent_dim))
        self.scale_raw = nn.Parameter(inverse_softplus(torch.ones(num_clusters, latent_dim)))

    @property
    def scale(self):
        return positive(self.scale_raw)

    def z_dist(self, cluster):
        return dist.Normal(select(self.loc, cluster), select(self.scale, cluster)).to_event(1)

    @torch.no_grad()
    def _set_components(self, means, scales):
        p = self.loc
        self.loc.copy_(torch.as_tensor(means, dtype=p.dtype, device=p.device))
        scales = torch.as_tensor(scales, dtype=p.dtype, device=p.device).clamp_min(2 * MIN_SCALE)
        self.scale_raw.copy_(inverse_softplus(scales).to(p.device, p.dtype))


class MixturePrior(GaussianComponents, PyroModule):
    """VaDE's learned Gaussian mixture (Jiang et al. 2017)::

        cluster ~ Categorical(softmax(logits))
        z | cluster ~ Normal(loc[cluster], scale[cluster])

    ``init_from_gmm`` sets the parameters from a fitted Gaussian mixture (VaDE's initialisation).
    With ``fixed_weights=True`` the weights stay uniform, ``1 / K`` (a buffer, not a parameter: the
    official VaDE MNIST code never updates pi), and ``init_from_gmm`` leaves them alone.

    >>> MixturePrior(latent_dim=2, num_clusters=4, fixed_weights=True).cluster_dist().probs
    tensor([0.2500, 0.2500, 0.2500, 0.2500])
    """

    cluster_sites = (CLUSTER,)

    def __init__(self, latent_dim, num_clusters, fixed_weights=False, **unused):
        super().__init__()
        check_positive("latent_dim", latent_dim, integer=True)
        check_positive("num_clusters", num_clusters, integer=True)
        self.latent_dim = latent_dim
        self.num_clusters = num_clusters
        self.guide_sites = {LATENT: latent_dim}
        if fixed_weights:
            self.register_buffer("logits", torch.zeros(num_clusters))
        else:
            self.logits = nn.Parameter(torch.zeros(num_clusters))
        self._init_components(num_clusters, latent_dim)

    @property
    def fixed_weights(self):
        """True when the cluster weights are a buffer, which training and ``init_from_gmm`` leave alone."""
        return not isinstance(self.logits, nn.Parameter)

    def cluster_dist(self):
        return dist.Categorical(logits=self.logits)

    def forward(self):
        cluster = pyro.sample(CLUSTER, self.cluster_dist(), infer=ENUM)
        return pyro.sample(LATENT, self.z_dist(cluster))

    @torch.no_grad()
    def init_from_gmm(self, weights, means, scales):
        """Copy a diagonal Gaussian mixture's means and standard deviations, and its weights unless the
        prior's weights are fixed (a buffer, as with ``fixed_weights=True``)."""
        p = self.logits
        if not self.fixed_weights:
            self.logits.copy_(torch.as_tensor(weights, dtype=p.dtype, device=p.device).clamp_min(1e-6).log())
        self._set_components(means, scales)


class FullCovarianceMixturePrior(MixturePrior):
    """VaDE's mixture with full-covariance components (ours, an option beside the paper's diagonal one)::

        cluster ~ Categorical(softmax(logits))
        z | cluster ~ MultivariateNormal(loc[cluster], scale_tril[cluster])

    ``scale_tril`` is lower-triangular with a ``softplus(raw) + min_scale`` diagonal. ``init_from_gmm`` takes
    ``scales`` as standard deviations ``(K, d)`` or as Cholesky factors ``(K, d, d)``; the start
    (:func:`~pyro_gmvae.inference.pretrain.initialise_prior`) passes the full covariance of each cluster's codes,
    since ``full_covariance`` is set.

    >>> prior = FullCovarianceMixturePrior(latent_dim=2, num_clusters=3)
    >>> prior.z_dist(torch.tensor(1)).covariance_matrix.round(decimals=4).tolist()
    [[1.0, 0.0], [0.0, 1.0]]
    """

    full_covariance = True

    def _init_components(self, num_clusters, latent_dim):
        self.loc = nn.Parameter(torch.randn(num_clusters, latent_dim))
        eye = torch.eye(latent_dim).expand(num_clusters, latent_dim, latent_dim)
        self.tril_raw = nn.Parameter(torch.where(eye > 0, inverse_softplus(torch.ones(())), torch.zeros(())))

    @property
    def scale_tril(self):
        diagonal = positive(self.tril_raw.diagonal(dim1=-2, dim2=-1))
        return self.tril_raw.tril(-1) + torch.diag_embed(diagonal)

    def z_dist(self, cluster):
        tril = self.scale_tril
        rows = select(tril.flatten(-2), cluster).unflatten(-1, tril.shape[-2:])
        return dist.MultivariateNormal(select(self.loc, cluster), scale_tril=rows)

    @torch.no_grad()
    def _set_components(self, means, scales):
        p = self.loc
        p.copy_(torch.as_tensor(means, dtype=p.dtype, device=p.device))
        scales = torch.as_tensor(np.asarray(scales), dtype=p.dtype, device=p.device)
        if scales.dim() == 2:  # standard deviations
            scales = torch.diag_embed(scales)
        diagonal = scales.diagonal(dim1=-2, dim2=-1).clamp_min(2 * MIN_SCALE)
        self.tril_raw.copy_(scales.tril(-1) + torch.diag_embed(inverse_softplus(diagonal).to(p.device, p.dtype)))


class ConditionalMixturePrior(PyroModule):
    """GMVAE's conditional mixture (Dilokthanakul et al. 2016)::

        w ~ Normal(0, I)                                  (noise_dim)
        cluster ~ Categorical(1 / K)                      (fixed, uniform)
        z | cluster, w ~ Normal(loc_cluster(w), scale_cluster(w))

    ``loc_k(w)`` and ``scale_k(w)`` are the K heads of one small net ``Linear -> Tanh``.
    """

    cluster_sites = (CLUSTER,)

    def __init__(self, latent_dim, num_clusters, noise_dim=None, hidden_dim=100, **unused):
        super().__init__()
        noise_dim = latent_dim if noise_dim is None else noise_dim
        for name, value in [("latent_dim", latent_dim), ("num_clusters", num_clusters),
                            ("noise_dim", noise_dim), ("hidden_dim", hidden_dim)]:
            check_positive(name, value, integer=True)
        self.latent_dim = latent_dim
        self.num_clusters = num_clusters
        self.noise_dim = noise_dim
        self.guide_sites = {NOISE: noise_dim, LATENT: latent_dim}
        self.hidden = nn.Sequential(nn.Linear(noise_dim, hidden_dim), nn.Tanh())
        self.loc_heads = nn.Linear(hidden_dim, num_clusters * latent_dim)
        self.scale_heads = nn.Linear(hidden_dim, num_clusters * latent_dim)
        self.register_buffer("_zero_w", torch.zeros(noise_dim))
        self.register_buffer("_logits", torch.zeros(num_clusters))

    def w_dist(self):
        return dist.Normal(self._zero_w, 1.0).to_event(1)

    def cluster_dist(self):
        return dist.Categorical(logits=self._logits)

    def components(self, w):
        """All K component locs and scales, each of shape ``w.shape[:-1] + (K, latent_dim)``."""
        h = self.hidden(w)
        shape = w.shape[:-1] + (self.num_clusters, self.latent_dim)
        return self.loc_heads(h).reshape(shape), positive(self.scale_heads(h)).reshape(shape)

    def z_dist(self, cluster, w):
        loc, scale = self.components(w)
        return dist.Normal(select(loc, cluster), select(scale, cluster)).to_event(1)

    @torch.no_grad()
    def init_from_gmm(self, weights, means, scales):
        """Start every ``w`` at a fitted diagonal mixture's components: the heads' weights are zeroed and
        their biases set to the means and standard deviations, so ``p(z | cluster, w)`` begins as the
        mixture's k-th component for any ``w`` and learns its dependence on ``w`` from there. The cluster
        weights stay the paper's fixed ``1 / K`` (``weights`` is accepted for the common signature)."""
        shape = (self.num_clusters, self.latent_dim)
        p = self.loc_heads.bias
        means = torch.as_tensor(np.asarray(means), dtype=p.dtype, device=p.device)
        scales = torch.as_tensor(np.asarray(scales), dtype=p.dtype, device=p.device).clamp_min(2 * MIN_SCALE)
        if means.shape != shape or scales.shape != shape:
            raise ConfigError(f"init_from_gmm needs means and scales of shape {shape}, got "
                              f"{tuple(means.shape)} and {tuple(scales.shape)}")
        for head in (self.loc_heads, self.scale_heads):
            head.weight.zero_()
        self.loc_heads.bias.copy_(means.reshape(-1))
        self.scale_heads.bias.copy_(inverse_softplus(scales.reshape(-1)).to(p.device, p.dtype))

    def forward(self):
        w = pyro.sample(NOISE, self.w_dist())
        cluster = pyro.sample(CLUSTER, self.cluster_dist(), infer=ENUM)
        return pyro.sample(LATENT, self.z_dist(cluster, w))


#: Priors by name (:data:`pyro_gmvae.registry.PRIORS`): register a class to make it a one-argument swap.
PRIORS.builtin("standard-normal", StandardNormalPrior)
PRIORS.builtin("mixture", MixturePrior)
PRIORS.builtin("full-mixture", FullCovarianceMixturePrior)
PRIORS.builtin("conditional-mixture", ConditionalMixturePrior)


def register_prior(name, cls=None, *, override=False):
    """Add a prior class to :data:`PRIORS` so that it can be chosen by name (CLI and config); usable as a
    decorator, ``@register_prior("my-prior")``. From the shell, the module that calls it is imported with
    ``--import MODULE`` (see :mod:`pyro_gmvae.plugins`)."""
    if cls is None:
        return PRIORS.register(name, override=override)
    return PRIORS.register(name, cls, override=override)
