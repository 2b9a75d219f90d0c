"""The cluster inference strategies (see :mod:`pyro_gmvae.inference.cluster_inference`): a base class with
what they share, and ``exact``, ``amortized``, ``score-function`` and ``relaxed``, registered by name."""

import math

import pyro
import pyro.distributions as dist
import torch
from pyro.infer import JitTrace_ELBO, JitTraceEnum_ELBO, Trace_ELBO, TraceEnum_ELBO
from pyro.poutine.runtime import get_plates
from torch import nn

from ...errors import ConfigError
from ...registry import CLUSTER_INFERENCE
from ...sites import CLUSTER
from ..minibatch import minibatch_epochs
from .elbos import (EnumeratedGuideELBO, JitEnumeratedGuideELBO, JitScoreFunctionELBO, ScoreFunctionELBO,
                    make_strategy_elbo)
from .guide import TrainingGuide
from .relaxation import ExpRelaxedCategorical, RelaxedClusterMessenger


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
        return make_strategy_elbo(TraceEnum_ELBO, JitTraceEnum_ELBO, num_particles, jit,
                                  strict_enumeration_warning=False)

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

    def start(self, model, x, posterior):
        """Called once before the first epoch. A guided strategy fits ``q(c | x)`` to the model's exact
        posterior ``p(c | x)`` (at the mean of ``q(h | x)``), so that training starts from the clusters the
        start found (VaDE's GMM) rather than from a uniform ``q(c | x)``, which would pull every component
        towards every datapoint in the first steps. ``posterior(model, guide, x) -> {site: (N, K) probs}``
        computes ``p(c | x)`` (the trainer passes :func:`pyro_gmvae.evaluation.cluster_marginals`)."""
        if self.guided:
            fit_cluster_head(model, self.guide_module, x, posterior)


def fit_cluster_head(model, guide, x, posterior, *, steps=300, lr=1e-2, max_points=10000):
    """Fit the ``q(c | x)`` head of ``guide`` to ``p(c | x)`` of ``model`` (``posterior(model, guide, x)``, see
    :meth:`ClusterInference.start`) by cross-entropy, on the encoder's features of up to ``max_points`` rows
    of ``x`` (full-batch Adam: no randomness is drawn)."""
    x = x[:max_points]
    head = guide.cluster_logits
    with torch.no_grad():
        target = posterior(model, guide, x)[CLUSTER].to(head.weight.dtype)
        features = guide.encoder(x).to(head.weight.dtype)
    opt = torch.optim.Adam(head.parameters(), lr=lr)
    last = None

    def full_batch_step(idx, start):
        nonlocal last
        loss = -(target * torch.log_softmax(head(features), -1)).sum(-1).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        last = float(loss.detach())
        return last, 1

    minibatch_epochs(full_batch_step, x.shape[0], epochs=steps, batch_size=x.shape[0],
                     what="loss of the q(c | x) fit", fix="pretrain longer, or use --cluster-inference exact")
    for p in head.parameters():
        p.grad = None
    return last


class Exact(ClusterInference):
    """No guide for the cluster: the model enumerates it and TraceEnum_ELBO sums it out exactly."""

    name = "exact"
    guided = False


class Amortized(ClusterInference):
    """``q(c | x)`` in the guide, enumerated: the sum over it is exact (TraceEnum_ELBO)."""

    name = "amortized"
    sums_other_clusters = True
    enumerates_guide = True

    def sample_cluster(self, guide, h, logits):
        return pyro.sample(CLUSTER, dist.Categorical(logits=logits), infer={"enumerate": "parallel"})

    def make_elbo(self, num_particles=1, jit=False):
        return make_strategy_elbo(EnumeratedGuideELBO, JitEnumeratedGuideELBO, num_particles, jit,
                     strict_enumeration_warning=False)


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
        return make_strategy_elbo(ScoreFunctionELBO, JitScoreFunctionELBO, num_particles, jit)


class Relaxed(ClusterInference):
    """The Concrete (Gumbel-softmax) relaxation of the cluster in model and guide (Trace_ELBO), with the
    temperature ``max(end, start * exp(-decay * epochs))``."""

    name = "relaxed"
    elbo_name = "Trace_ELBO"

    def __init__(self, guide=None, config=None):
        super().__init__(guide, config)
        start, end, decay = (1.0, 0.5, 0.05) if config is None else \
            (config.temperature_start, config.temperature_end, config.temperature_decay)
        RelaxedClusterMessenger(start)  # refuses a temperature that is not positive, before any work
        self.temperature_start, self.temperature_end, self.temperature_decay = start, end, decay
        self.temperature = float(start)

    def temperature_at(self, epochs):
        return max(self.temperature_end, self.temperature_start * math.exp(-self.temperature_decay * epochs))

    def at_epoch(self, epochs):
        self.temperature = self.temperature_at(epochs)

    def check_training(self, config, guide):
        super().check_training(config, guide)
        if config.jit and config.temperature_decay > 0 and config.temperature_start != config.temperature_end:
            raise ConfigError("--jit compiles the temperature as a constant, so the relaxed cluster's schedule "
                              "would not apply; drop --jit, or fix the temperature (--temperature-decay 0)")

    def sample_cluster(self, guide, h, logits):
        return pyro.sample(CLUSTER, ExpRelaxedCategorical(logits.new_tensor(self.temperature), logits=logits))

    def model(self, model):
        """``model`` with its cluster relaxed at the temperature of the step (a new handler per call)."""

        def relaxed_model(*args, **kwargs):
            with RelaxedClusterMessenger(self.temperature):
                return model(*args, **kwargs)

        return relaxed_model

    def make_elbo(self, num_particles=1, jit=False):
        return make_strategy_elbo(Trace_ELBO, JitTrace_ELBO, num_particles, jit)


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
