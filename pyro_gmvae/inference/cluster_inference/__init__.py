r"""How the cluster is inferred in training: four strategies on the same model, chosen by name.

Write ``c`` for the cluster, ``h`` for the continuous latents (``z``, and GMVAE's ``w``), ``f(x)`` for the
encoder trunk's features and ``e_c`` for a learned embedding of cluster ``c`` in that space (zero at the start).

- ``exact`` (the default, VaDE's and GMVAE's own): no guide for ``c``; :class:`~pyro.infer.TraceEnum_ELBO`
  sums it out in the model, with the exact ``p(c | h)`` inside the expectation over ``q(h | x)``.
- ``amortized`` (Kingma et al. 2014's M2, Rui Shu's GMVAE): the guide is ``q(c | x) q(h | x, c)``;
  ``q(c | x)`` is a softmax head on the encoder trunk, and the sites whose prior depends on ``c`` (``z``)
  are read from the features ``f(x) + e_c``. The guide's cluster site is enumerated, so the expectation
  over ``q(c | x)`` is an exact sum:

  .. math::

      \mathcal{L}(x) = \sum_c q(c \mid x)\, \mathbb{E}_{q(h \mid x, c)}\big[\log p(x \mid z) + \log p(c)
          + \log p(h \mid c) - \log q(c \mid x) - \log q(h \mid x, c)\big].

- ``score-function``: the same guide and the same bound, with ``c`` *sampled* from ``q(c | x)`` and the
  gradient of ``q(c | x)`` estimated by REINFORCE with a learned baseline ``b(x)`` (a linear map of the
  detached encoder features, fitted by Pyro's :class:`~pyro.infer.TraceGraph_ELBO` to the downstream cost):
  :math:`\nabla = \mathbb{E}[(\mathrm{cost} - b(x))\,\nabla \log q(c \mid x)] + \text{pathwise terms}`.
- ``relaxed`` (the Concrete / Gumbel-softmax relaxation; Maddison et al. 2017, Jang et al. 2017): the
  cluster is replaced by ``s = log y``, ``y`` a point of the simplex, in model *and* guide:
  ``s ~ ExpConcrete(softmax(logits), tau)`` in both (the prior's logits in the model, ``q(c | x)``'s in the
  guide), and every per-cluster table of the prior is mixed with the weights ``y`` (``loc = sum_k y_k loc_k``,
  :func:`~pyro_gmvae.models.priors.select`). :class:`~pyro.infer.Trace_ELBO` then optimises

  .. math::

      \mathcal{L}_\tau(x) = \mathbb{E}_{q_\tau(s \mid x)\, q(h \mid x, y)}\big[\log p(x \mid z)
          + \log p_\tau(s) + \log p(h \mid y) - \log q_\tau(s \mid x) - \log q(h \mid x, y)\big],

  a lower bound on the *relaxed* model's evidence ``log p_tau(x)``, not on the discrete model's; samples of
  ``y`` approach one-hot vectors as ``tau`` falls (``tau = max(end, start * exp(-decay * epochs))``, per step).
  Densities are taken in log space (``ExpRelaxedCategorical``), which stays finite at low temperatures.

Whatever trained the model, evaluation (:mod:`pyro_gmvae.evaluation`) sums ``c`` out exactly in the model:
the guide called as ``guide(x)`` samples only the continuous latents, from ``q(h | x) = sum_c q(c | x)
q(h | x, c)`` (a mixture; the plain ``q(h | x)`` for ``exact``).

Where a strategy does not apply: a prior without a ``cluster`` site (the VAE baseline) has nothing to
infer (``exact`` only); a prior whose cluster has enumerated parents (the hierarchy's super-cluster)
works with ``exact`` and ``amortized`` (the model still sums the super-cluster out), not with ``relaxed``
or ``score-function`` (Trace_ELBO and TraceGraph_ELBO cannot sum it out).

A new strategy is a :class:`ClusterInference` subclass registered with :func:`register_cluster_inference`
(guide 10).

>>> import torch
>>> from pyro_gmvae import ModelConfig, build
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy",
...                                  cluster_inference="amortized"))
>>> strategy = make_cluster_inference(guide)
>>> loss = strategy.make_elbo().differentiable_loss(strategy.model(model), strategy.guide, torch.rand(4, 6))
>>> bool(torch.isfinite(loss))
True
"""

from ...registry import CLUSTER_INFERENCE
from .elbos import JitScoreFunctionELBO, ScoreFunctionELBO
from .guide import ClusterGuide, TrainingGuide, build_guide, cluster_dependent_sites
from .relaxation import ExpRelaxedCategorical, RelaxedClusterMessenger, relax_clusters
from .strategies import (Amortized, Baseline, ClusterInference, Exact, Relaxed, ScoreFunction, fit_cluster_head,
                         make_cluster_inference, register_cluster_inference)

__all__ = ["CLUSTER_INFERENCE", "Amortized", "Baseline", "ClusterGuide", "ClusterInference", "Exact",
           "ExpRelaxedCategorical", "JitScoreFunctionELBO", "Relaxed", "RelaxedClusterMessenger", "ScoreFunction",
           "ScoreFunctionELBO", "TrainingGuide", "build_guide", "cluster_dependent_sites", "fit_cluster_head",
           "make_cluster_inference", "register_cluster_inference", "relax_clusters"]
