"""Amortized guides (variational posteriors) ``q(latents | x)``.

A guide is one encoder trunk shared by all continuous sites and one head per site, as in the
GMVAE paper (one encoder gives ``q(z | x)`` and ``q(w | x)``). Cluster sites have no guide: the
model enumerates them, so the ELBO uses the exact ``p(cluster | z, w)`` (VaDE's "gamma").

The head family is the swappable part: ``"diagonal"`` (mean-field Normal) or ``"lowrank"``
(``LowRankMultivariateNormal``). The sites come from the prior (``prior.guide_sites``), so the
same guide family serves every prior.
"""

import inspect

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..errors import ConfigError
from ..models.priors import positive
from ..registry import GUIDES
from ..sites import DATA_PLATE, LATENT


class DiagonalNormalHead(nn.Module):
    """``q = Normal(loc(h), scale(h))`` with independent dimensions."""

    def __init__(self, in_dim, dim):
        super().__init__()
        self.loc = nn.Linear(in_dim, dim)
        self.scale_raw = nn.Linear(in_dim, dim)

    def forward(self, h):
        return dist.Normal(self.loc(h), positive(self.scale_raw(h))).to_event(1)


class LowRankNormalHead(nn.Module):
    """``q = LowRankMultivariateNormal(loc(h), factor(h), diag(h))``: correlated dimensions."""

    #: its traced loss is not the eager loss on the same random numbers (the check of tests/inference/test_jit.py
    #: fails for it: another order of draws, or a wrong loss, untold), so ``TrainConfig(jit=None)`` trains it eagerly
    jit_safe = False

    def __init__(self, in_dim, dim, rank=2):
        super().__init__()
        if dim < 2:
            raise ConfigError(f"the lowrank guide needs latent sites of at least 2 dimensions, got {dim}; "
                              "use --guide diagonal")
        self.rank = min(rank, dim)
        self.dim = dim
        self.loc = nn.Linear(in_dim, dim)
        self.factor = nn.Linear(in_dim, dim * self.rank)
        self.diag_raw = nn.Linear(in_dim, dim)

    def forward(self, h):
        factor = 0.1 * self.factor(h).reshape(h.shape[:-1] + (self.dim, self.rank))
        return dist.LowRankMultivariateNormal(self.loc(h), factor, positive(self.diag_raw(h)) ** 2)


GUIDES.builtin("diagonal", DiagonalNormalHead)
GUIDES.builtin("lowrank", LowRankNormalHead)


def register_guide(name, cls=None, *, override=False):
    """Add a guide head family to :data:`~pyro_gmvae.registry.GUIDES` so that it can be chosen by name
    (``--guide``, ``ModelConfig``).

    ``cls(in_dim, dim)`` is an ``nn.Module`` mapping the encoder's features ``(..., in_dim)`` to a
    distribution over one site of ``dim`` dimensions (event shape ``(dim,)``). Usable as a decorator:

    >>> @register_guide("doc-diagonal")
    ... class DocHead(DiagonalNormalHead):
    ...     pass
    >>> GUIDES.unregister("doc-diagonal") is DocHead
    True
    """
    if cls is None:
        return GUIDES.register(name, override=override)
    return GUIDES.register(name, cls, override=override)


class AmortizedGuide(PyroModule):
    """The guide ``guide(x)``: a trunk ``encoder`` and a head per site of ``sites`` (``{name: dim}``).
    ``head_options``: keywords for the head family, each passed only if its constructor names it
    (``flow_layers`` of the ``iaf`` head)."""

    def __init__(self, encoder, sites, head="diagonal", head_options=None):
        super().__init__()
        if isinstance(head, str):
            GUIDES.check(head)
            head = GUIDES[head]
        if not sites:
            raise ConfigError("a guide needs at least one continuous latent site")
        self.encoder = encoder
        self.sites = dict(sites)
        named = inspect.signature(head).parameters
        options = {k: v for k, v in (head_options or {}).items() if k in named}
        self.heads = nn.ModuleDict({name: head(encoder.out_dim, dim, **options) for name, dim in self.sites.items()})

    def site_dists(self, x):
        """The guide's distribution of every site given ``x``: ``{name: Distribution}``."""
        h = self.encoder(x)
        return {name: self.heads[name](h) for name in self.sites}

    def forward(self, x):
        dists = self.site_dists(x)
        with pyro.plate(DATA_PLATE, x.shape[0]):
            return {name: pyro.sample(name, d) for name, d in dists.items()}


def encode_mean(guide, x, site=LATENT, batch_size=1000):
    """The mean of ``q(site | x)`` for every row of ``x``, encoded in chunks of ``batch_size`` rows without
    gradients (the codes of the initialisation, the plots and the estimator's ``transform``)."""
    with torch.no_grad():
        return torch.cat([guide.site_dists(x[i:i + batch_size])[site].mean for i in range(0, x.shape[0], batch_size)])
