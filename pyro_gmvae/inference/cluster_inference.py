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

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.infer import (JitTrace_ELBO, JitTraceEnum_ELBO, JitTraceGraph_ELBO, Trace_ELBO, TraceEnum_ELBO,
                        TraceGraph_ELBO)
from pyro.poutine.handlers import _make_handler
from pyro.poutine.messenger import Messenger
from pyro.poutine.runtime import get_plates
from torch import nn
from torch.distributions import relaxed_categorical

from ..errors import ConfigError
from ..models.priors import select
from ..registry import CLUSTER_INFERENCE
from ..sites import CLUSTER, DATA_PLATE
from .amortized import AmortizedGuide
from .elbo import MAX_PLATE_NESTING

class ExpRelaxedCategorical(relaxed_categorical.ExpRelaxedCategorical, TorchDistributionMixin):
    """torch's ``ExpRelaxedCategorical`` (the log of a Concrete sample) as a Pyro distribution."""


# -- the strategies -------------------------------------------------------------------------------------
class ClusterInference:
    """A way to infer the cluster in training. Subclasses set :attr:`name` and override what differs:

    - :meth:`sample_cluster`: the guide's ``cluster`` site given the features ``h`` and the logits of
      ``q(c | x)`` (not called by ``exact``, whose guide has no cluster site);
    - :meth:`make_elbo`: the Pyro ELBO that trains it;
    - :meth:`model`: the model as trained (``relaxed`` swaps the cluster's distribution with a handler);
    - :meth:`check_prior`, :meth:`check_training`: refuse what cannot work, before any work;
    - :meth:`guide_modules`: extra modules the guide owns (``score-function``'s baseline);
    - :meth:`at_epoch`: called before every step with the epochs done so far (a float), for schedules;
    - :meth:`start`: called once before the first epoch (guided strategies fit ``q(c | x)`` to the model's
      posterior there).
    """

    name = None
    #: False for ``exact``: the guide has no cluster site and the model enumerates it.
    guided = True
    #: True when the model's cluster site may keep enumerated parents (the hierarchy's super-cluster).
    sums_other_clusters = False

    def __init__(self, guide=None, config=None):
        self.guide_module = guide
        self.config = config

    # construction-time checks
    @classmethod
    def check_prior(cls, prior_name, cluster_sites):
        """Raise :class:`ConfigError` unless the prior (its name and its ``cluster_sites``) fits."""
        if not cls.guided:
            return
        if cluster_sites is None:
            return
        if CLUSTER not in cluster_sites:
            raise ConfigError(f"the prior {prior_name!r} has no {CLUSTER!r} site, so there is no cluster to infer "
                              f"with cluster_inference={cls.name!r}; use cluster_inference='exact' "
                              "(--cluster-inference exact)")
        if len(cluster_sites) > 1 and not cls.sums_other_clusters:
            others = ", ".join(s for s in cluster_sites if s != CLUSTER)
            raise ConfigError(f"cluster_inference={cls.name!r} cannot train the prior {prior_name!r}: its cluster "
                              f"has the enumerated parent(s) {others}, which {cls.elbo_name} cannot sum out; use "
                              "'exact' or 'amortized' (--cluster-inference amortized)")

    def check_training(self, config, guide):
        """Raise :class:`ConfigError` for a :class:`~pyro_gmvae.config.TrainConfig` this strategy cannot run."""
        conditioned = getattr(guide, "conditioned", ())
        if config.free_bits > 0 and self.guided and config.free_bits_site in conditioned \
                and self.enumerates_guide:
            raise ConfigError(f"free bits on {config.free_bits_site!r} with cluster_inference={self.name!r}: "
                              f"q({config.free_bits_site} | x, c) is summed over the enumerated cluster, so its "
                              "KL is not one per datapoint; constrain the cluster (--free-bits-site cluster), or "
                              "use --cluster-inference relaxed or score-function")

    enumerates_guide = False
    elbo_name = "TraceEnum_ELBO"

    @staticmethod
    def guide_modules(in_dim):
        return {}

    def sample_cluster(self, guide, h, logits):
        raise NotImplementedError

    def make_elbo(self, num_particles=1, jit=False):
        return _elbo(TraceEnum_ELBO, JitTraceEnum_ELBO, num_particles, jit, strict_enumeration_warning=False)

    def model(self, model):
        return model

    @property
    def guide(self):
        """The guide as trained (for ``exact``, the guide itself)."""
        if not self.guided:
            return self.guide_module
        return TrainingGuide(self.guide_module, self)

    def at_epoch(self, epochs):
        pass

    def start(self, model, x):
        """Called once before the first epoch. A guided strategy fits ``q(c | x)`` to the model's exact
        posterior ``p(c | x)`` (at the mean of ``q(h | x)``), so that training starts from the clusters the
        start found (VaDE's GMM) rather than from a uniform ``q(c | x)``, which would pull every component
        towards every datapoint in the first steps."""
        if self.guided:
            fit_cluster_head(model, self.guide_module, x)


def fit_cluster_head(model, guide, x, *, steps=300, lr=1e-2, max_points=10000):
    """Fit the ``q(c | x)`` head of ``guide`` to ``p(c | x)`` of ``model`` by cross-entropy, on the encoder's
    features of up to ``max_points`` rows of ``x`` (full-batch Adam: no randomness is drawn)."""
    from ..evaluation.responsibilities import cluster_marginals

    x = x[:max_points]
    head = guide.cluster_logits
    with torch.no_grad():
        target = cluster_marginals(model, guide, x)[CLUSTER].to(head.weight.dtype)
        features = guide.encoder(x).to(head.weight.dtype)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    for _ in range(steps):
        loss = -(target * torch.log_softmax(head(features), -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    for p in head.parameters():
        p.grad = None
    return float(loss.detach())


def _elbo(cls, jit_cls, num_particles, jit, **kwargs):
    if jit:
        cls, kwargs = jit_cls, {**kwargs, "ignore_jit_warnings": True}
    return cls(max_plate_nesting=MAX_PLATE_NESTING, num_particles=num_particles,
               vectorize_particles=num_particles > 1, **kwargs)


class Exact(ClusterInference):
    """No guide for the cluster: the model enumerates it and TraceEnum_ELBO sums it out exactly."""

    name = "exact"
    guided = False
    sums_other_clusters = True


class Amortized(ClusterInference):
    """``q(c | x)`` in the guide, enumerated: the sum over it is exact (TraceEnum_ELBO)."""

    name = "amortized"
    sums_other_clusters = True
    enumerates_guide = True

    def sample_cluster(self, guide, h, logits):
        return pyro.sample(CLUSTER, dist.Categorical(logits=logits), infer={"enumerate": "parallel"})

    def make_elbo(self, num_particles=1, jit=False):
        return _elbo(_EnumeratedGuideELBO, _JitEnumeratedGuideELBO, num_particles, jit,
                     strict_enumeration_warning=False)


class _QuietPenalty:
    """Pyro warns that the free-bits penalty (outside the data plate) may depend on the guide's enumerated
    cluster (inside it); it does not: it is computed from the logits of q(c | x) and p(c), never from the
    enumerated value."""

    def _get_trace(self, *args, **kwargs):
        import warnings

        from .free_bits import PENALTY_SITE

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f'at model site "{PENALTY_SITE}", possibly invalid dependency')
            return super()._get_trace(*args, **kwargs)


class _EnumeratedGuideELBO(_QuietPenalty, TraceEnum_ELBO):
    pass


class _JitEnumeratedGuideELBO(_QuietPenalty, JitTraceEnum_ELBO):
    pass


class Baseline(nn.Module):
    """The score-function baseline ``b(x)``: a linear map of the (detached) encoder features, one value per
    datapoint."""

    def __init__(self, in_dim):
        super().__init__()
        self.linear = nn.Linear(in_dim, 1)

    def forward(self, h):
        return self.linear(h).squeeze(-1)


def _plate_shape():
    """The batch shape of a site sampled here: the active plates' sizes at their dims."""
    frames = [f for f in get_plates() if f.vectorized]
    shape = [1] * max([-f.dim for f in frames] + [0])
    for f in frames:
        shape[f.dim] = f.size
    return tuple(shape)


class ScoreFunction(ClusterInference):
    """``c`` sampled from ``q(c | x)``; REINFORCE with a learned baseline (TraceGraph_ELBO)."""

    name = "score-function"
    elbo_name = "TraceGraph_ELBO"

    @staticmethod
    def guide_modules(in_dim):
        return {"baseline": Baseline(in_dim)}

    def sample_cluster(self, guide, h, logits):
        # the baseline's input has the site's batch shape (vectorized particles included)
        features = h.expand(_plate_shape() + h.shape[-1:])
        infer = {"baseline": {"nn_baseline": guide.strategy_modules["baseline"], "nn_baseline_input": features}}
        return pyro.sample(CLUSTER, dist.Categorical(logits=logits), infer=infer)

    def make_elbo(self, num_particles=1, jit=False):
        return _elbo(ScoreFunctionELBO, JitScoreFunctionELBO, num_particles, jit)


def _value_of_first_gradient_of_second(value, surrogate):
    """A tensor equal to ``value`` whose gradient is that of ``surrogate``."""
    return value.detach() + (surrogate - surrogate.detach())


class ScoreFunctionELBO(TraceGraph_ELBO):
    """Pyro's :class:`~pyro.infer.TraceGraph_ELBO` with a ``differentiable_loss``: the negative ELBO
    estimate as its value, the surrogate loss's gradient (REINFORCE with baselines, plus the baselines'
    regression) as its gradient, so that it trains as a torch loss (Pyro's ``ELBOModule``)."""

    def differentiable_loss(self, model, guide, *args, **kwargs):
        elbo, surrogate = self._loss_and_surrogate_loss(model, guide, args, kwargs)
        return _value_of_first_gradient_of_second(-elbo, surrogate)


class JitScoreFunctionELBO(JitTraceGraph_ELBO):
    """:class:`ScoreFunctionELBO` compiled with :func:`pyro.ops.jit.trace` (as Pyro's ``JitTraceGraph_ELBO``)."""

    def differentiable_loss(self, model, guide, *args, **kwargs):
        import weakref

        from pyro.ops.jit import trace

        kwargs = {**kwargs, "_pyro_model_id": id(model), "_pyro_guide_id": id(guide)}
        if getattr(self, "_jit_differentiable_loss", None) is None:
            weakself = weakref.ref(self)

            @trace(ignore_warnings=self.ignore_jit_warnings, jit_options=self.jit_options)
            def jit_loss(*args, **kwargs):
                kwargs.pop("_pyro_model_id")
                kwargs.pop("_pyro_guide_id")
                elbo, surrogate = weakself()._loss_and_surrogate_loss(model, guide, args, kwargs)
                return _value_of_first_gradient_of_second(-elbo, surrogate)

            self._jit_differentiable_loss = jit_loss
        return self._jit_differentiable_loss(*args, **kwargs)


class RelaxedClusterMessenger(Messenger):
    """Swaps the model's categorical ``site`` for its Concrete counterpart ``ExpRelaxedCategorical(tau,
    logits)``, with the same logits, at the temperature ``temperature`` (read at every call)."""

    def __init__(self, temperature=1.0, site=CLUSTER):
        if not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ConfigError(f"the relaxation's temperature must be a positive number, got {temperature!r}")
        super().__init__()
        self.temperature = float(temperature)
        self.site = site

    def _pyro_sample(self, msg):
        if msg["name"] == self.site:
            logits = msg["fn"].logits
            msg["fn"] = ExpRelaxedCategorical(logits.new_tensor(self.temperature), logits=logits)
            msg["infer"] = {k: v for k, v in msg["infer"].items() if k != "enumerate"}


@_make_handler(RelaxedClusterMessenger)
def relax_clusters(fn=None, temperature=1.0, site=CLUSTER):
    """``relax_clusters(model, temperature=0.5)``: the model with its cluster relaxed (see
    :class:`RelaxedClusterMessenger`)."""
    ...


class Relaxed(ClusterInference):
    """The Concrete (Gumbel-softmax) relaxation of the cluster in model and guide (Trace_ELBO), with the
    temperature ``max(end, start * exp(-decay * epochs))``."""

    name = "relaxed"
    elbo_name = "Trace_ELBO"

    def __init__(self, guide=None, config=None):
        super().__init__(guide, config)
        start, end, decay = (1.0, 0.5, 0.05) if config is None else \
            (config.temperature_start, config.temperature_end, config.temperature_decay)
        self.temperature_start, self.temperature_end, self.temperature_decay = start, end, decay
        self.handler = RelaxedClusterMessenger(start)

    @property
    def temperature(self):
        return self.handler.temperature

    def temperature_at(self, epochs):
        return max(self.temperature_end, self.temperature_start * math.exp(-self.temperature_decay * epochs))

    def at_epoch(self, epochs):
        self.handler.temperature = self.temperature_at(epochs)

    def check_training(self, config, guide):
        super().check_training(config, guide)
        if config.jit and config.temperature_decay > 0 and config.temperature_start != config.temperature_end:
            raise ConfigError("--jit compiles the temperature as a constant, so the relaxed cluster's schedule "
                              "would not apply; drop --jit, or fix the temperature (--temperature-decay 0)")

    def sample_cluster(self, guide, h, logits):
        return pyro.sample(CLUSTER, ExpRelaxedCategorical(logits.new_tensor(self.temperature), logits=logits))

    def model(self, model):
        return self.handler(model)

    def make_elbo(self, num_particles=1, jit=False):
        return _elbo(Trace_ELBO, JitTrace_ELBO, num_particles, jit)


for _cls in (Exact, Amortized, Relaxed, ScoreFunction):
    CLUSTER_INFERENCE.builtin(_cls.name, _cls)


def register_cluster_inference(name, cls=None, *, override=False):
    """Add a :class:`ClusterInference` subclass to :data:`~pyro_gmvae.registry.CLUSTER_INFERENCE` under
    ``name`` (``--cluster-inference``, ``ModelConfig(cluster_inference=...)``); usable as a decorator."""
    if cls is None:
        return lambda c: register_cluster_inference(name, c, override=override)
    if not (isinstance(cls, type) and issubclass(cls, ClusterInference)):
        raise ConfigError(f"register_cluster_inference takes a ClusterInference subclass, got {cls!r}")
    CLUSTER_INFERENCE.register(name, cls, override=override)
    cls.name = name
    return cls


def make_cluster_inference(guide, config=None):
    """The strategy that trains ``guide`` (its ``cluster_inference``, ``exact`` for a plain guide), set up
    with the :class:`~pyro_gmvae.config.TrainConfig` ``config`` (its temperature schedule) and checked
    against it."""
    name = getattr(guide, "cluster_inference", "exact")
    CLUSTER_INFERENCE.check(name)
    strategy = CLUSTER_INFERENCE[name](guide, config)
    if config is not None:
        strategy.check_training(config, guide)
    return strategy


# -- the guide ---------------------------------------------------------------------------------------------
class ClusterGuide(AmortizedGuide):
    """``q(c | x) q(h | x, c)`` on one encoder trunk: the guide of every strategy but ``exact``.

    ``q(c | x)`` is ``Categorical(logits=cluster_logits(f))`` on the trunk's features ``f = encoder(x)``
    (zero-initialised: uniform at the start); a site in ``conditioned`` (those whose prior depends on the
    cluster: ``z``) is read by its head from ``f + e_c``, ``e_c = select(cluster_embedding, c)``; for a linear head that is one-hot ``c`` concatenated
    to the features. The embedding starts at zero, so ``q(h | x, c)`` starts as the plain ``q(h | x)``
    (pretraining trains that).

    Called as ``guide(x)`` (evaluation, responsibilities, the marginal likelihood) it samples the continuous
    latents only, from ``sum_c q(c | x) q(h | x, c)``; ``guide(x, strategy)`` is the guide as trained.
    """

    def __init__(self, encoder, sites, head, num_clusters, conditioned, cluster_inference):
        super().__init__(encoder, sites, head)
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
    from pyro import poutine

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
    if not strategy.guided:
        return AmortizedGuide(encoder, prior.guide_sites, config.guide)
    conditioned = cluster_dependent_sites(prior, prior.guide_sites)
    if name == "relaxed":
        _check_relaxable(prior, config.prior_name)
    return ClusterGuide(encoder, prior.guide_sites, config.guide, prior.num_clusters, conditioned, name)


def _check_relaxable(prior, prior_name):
    try:
        with torch.no_grad(), pyro.plate(DATA_PLATE, 2):
            relax_clusters(prior, temperature=1.0)()
    except (IndexError, RuntimeError, TypeError, ValueError) as e:
        raise ConfigError(f"the prior {prior_name!r} cannot take a relaxed cluster (a point of the simplex, as "
                          f"log-weights): {' '.join(str(e).split())[:200]}. Index its per-cluster tables with "
                          "pyro_gmvae.models.priors.select(table, cluster), or use another "
                          "--cluster-inference") from None
