r"""The VampPrior (Tomczak and Welling 2018, "VAE with a VampPrior"): a mixture of the model's own
posteriors at K learned pseudo-inputs ``u_k``::

    cluster ~ Categorical(1 / K)                 (which pseudo-input; enumerated)
    z | cluster ~ q(z | u_cluster)               (the guide's encoder and z head at the pseudo-input)

so that :math:`p(z) = \frac{1}{K} \sum_k q(z \mid u_k)`. The component index is the ``cluster`` site, marked
for parallel enumeration: ``TraceEnum_ELBO`` sums it exactly, and every estimator, responsibility and
free-bits target treats it as it treats a mixture's cluster. Read as a clustering, ``p(cluster | x)`` says
which pseudo-input explains ``x`` (K is usually far above the number of classes: the paper's 500).

The prior names ``guide`` among its constructor's arguments, so :func:`~pyro_gmvae.models.build` hands it
the model's guide (a :class:`~pyro_gmvae.models.build.GuideLink`: the encoder's parameters stay the
guide's, optimised once). The pseudo-inputs start at K rows of the training data
(:meth:`VampPrior.init_from_data`, called by the trainer before the first epoch; a resumed run keeps its
own); for a Bernoulli or continuous-Bernoulli likelihood they pass through ``hardtanh(., 0, 1)``, the
paper's, so that they stay in the data's range.

>>> import torch
>>> from pyro_gmvae import ModelConfig, build, make_elbo
>>> model, guide = build(ModelConfig(prior="vamp", num_pseudo_inputs=4, data_dim=6, latent_dim=3,
...                                  network="toy"))
>>> model.prior.num_clusters, tuple(model.prior.pseudo_inputs.shape)
(4, (4, 6))
>>> bool(torch.isfinite(make_elbo().differentiable_loss(model, guide, torch.rand(5, 6))))
True
"""

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.nn import PyroModule
from torch import nn

from ..errors import ConfigError, check_positive
from ..registry import MODELS, PRIORS
from ..sites import CLUSTER, LATENT
from .priors import ENUM, select
from .specs import ModelSpec


class VampPrior(PyroModule):
    """``p(z) = 1/K sum_k q(z | u_k)`` with K learned pseudo-inputs (module docstring).

    :param int num_pseudo_inputs: K (None: ``num_clusters``; ``ModelConfig`` sets both to K).
    :param guide: the model's guide (``build`` supplies it).
    """

    cluster_sites = (CLUSTER,)
    #: the components are pseudo-inputs, not classes: the trainer's collapse warning does not apply
    components_are_clusters = False
    #: q(z | u_k) is the plain guide's: a guide that infers the cluster (q(c | x)) has no such component
    cluster_inferences = ("exact",)
    #: the guide heads whose q(z | u_k) it can index by component (a Normal, a low-rank Normal)
    guide_families = ("diagonal", "lowrank")

    def __init__(self, latent_dim, num_clusters, data_dim, guide, likelihood="bernoulli", num_pseudo_inputs=None,
                 **unused):
        super().__init__()
        num_pseudo_inputs = num_clusters if num_pseudo_inputs is None else num_pseudo_inputs
        for name, value in [("latent_dim", latent_dim), ("num_pseudo_inputs", num_pseudo_inputs),
                            ("data_dim", data_dim)]:
            check_positive(name, value, integer=True)
        self.latent_dim = latent_dim
        self.num_clusters = num_pseudo_inputs
        self.likelihood = likelihood
        self.guide_sites = {LATENT: latent_dim}
        self.guide = guide
        self.pseudo_inputs = nn.Parameter(torch.rand(num_pseudo_inputs, data_dim))
        self.register_buffer("_logits", torch.zeros(num_pseudo_inputs))
        self.register_buffer("initialised", torch.tensor(False))

    def inputs(self):
        """The pseudo-inputs as the encoder reads them (in [0, 1] for the Bernoulli likelihoods)."""
        if self.likelihood == "normal":
            return self.pseudo_inputs
        return F.hardtanh(self.pseudo_inputs, 0.0, 1.0)

    def cluster_dist(self):
        return dist.Categorical(logits=self._logits)

    def z_dist(self, cluster):
        q = self.guide.site_dists(self.inputs())[LATENT]  # batch (K,): one component per pseudo-input
        if isinstance(q, dist.Independent) and isinstance(q.base_dist, dist.Normal):
            return dist.Normal(select(q.base_dist.loc, cluster), select(q.base_dist.scale, cluster)).to_event(1)
        if isinstance(q, dist.LowRankMultivariateNormal):
            factor = select(q.cov_factor.flatten(-2), cluster).unflatten(-1, q.cov_factor.shape[-2:])
            return dist.LowRankMultivariateNormal(select(q.loc, cluster), factor, select(q.cov_diag, cluster))
        raise ConfigError(f"the vamp prior indexes q(z | u_k) by component, which it can for a Normal or a "
                          f"low-rank Normal guide head, not for {type(q).__name__}; use --guide diagonal or lowrank")

    def forward(self):
        cluster = pyro.sample(CLUSTER, self.cluster_dist(), infer=ENUM)
        return pyro.sample(LATENT, self.z_dist(cluster))

    @torch.no_grad()
    def init_from_data(self, x):
        """Start the pseudo-inputs at K rows of ``x`` drawn without replacement (with replacement and a little
        noise when K exceeds the rows), once: a prior that has started (a resumed run) is left alone."""
        if bool(self.initialised):
            return
        n, k = x.shape[0], self.num_clusters
        rows = torch.randperm(n)[:k] if k <= n else torch.randint(n, (k,))
        start = x[rows.to(x.device)].to(self.pseudo_inputs)
        if k > n:
            start = start + 0.01 * torch.randn_like(start)
        self.pseudo_inputs.copy_(start)
        self.initialised.fill_(True)


PRIORS.builtin("vamp", VampPrior)
MODELS.builtin("vamp", ModelSpec("vamp", description="VAE with a VampPrior (Tomczak and Welling 2018)"))
