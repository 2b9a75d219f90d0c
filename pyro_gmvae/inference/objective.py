r"""The training objective and its schedule: Pyro's ELBO as a module, the importance-weighted bound with the
clusters enumerated, KL warm-up as a handler, training-only terms, and VaDE's step decay of the rate.

Training-only terms
-------------------
A term that shapes training but is not part of the model's density (a regulariser, a prior on the prior's
parameters that no paper counts in ``log p(x)``) must not be a ``pyro.factor`` site of the model: every
``log p(x)`` estimator replays the model and would count it. Give any module of the model or the guide a
method ``training_loss(x)`` instead: :class:`Objective` adds what it returns (a scalar tensor, in nats, added
to each minibatch's loss as it is) to the loss it optimises, and nothing else calls it. Example, a
hierarchy's ``loc_k ~ N(super_loc_s, tau)`` as a penalty::

    class TiedHierarchicalPrior(HierarchicalMixturePrior):
        def training_loss(self, x):
            return ((self.loc - self.super_loc_of_each_cluster) ** 2).sum() / (2 * tau ** 2)

KL warm-up
----------
:func:`kl_scale` multiplies the log-density of every latent site, in the model and in the guide, by
``beta``: with the clusters enumerated, Pyro applies the enumerated sites' common scale outside the sum over
clusters, so the ELBO becomes

.. math::

    \mathcal{L}_\beta(x) = \mathbb{E}_{q(h \mid x)}\big[\log p(x \mid z)\big]
        - \beta\, \mathbb{E}_{q(h \mid x)}\Big[\log q(h \mid x) - \log \sum_c p(c)\, p(h \mid c)\Big],

the warm-up of Bowman et al. (2016) and Sønderby et al. (2016) (``TrainConfig.kl_warmup_epochs``: beta rises
linearly from 0 to 1 over that many epochs, per step).

The importance-weighted bound
-----------------------------
:class:`IWAEObjective` (``TrainConfig(objective="iwae")``) is Burda et al.'s bound with K particles and the
clusters summed exactly in each weight:

.. math::

    \mathcal{L}_K(x) = \mathbb{E}\Big[\log \frac{1}{K} \sum_{k=1}^{K}
        \frac{\sum_c p(x, c, h_k)}{q(h_k \mid x)}\Big], \qquad h_k \sim q(h \mid x).
"""

import math

from pyro.infer.elbo import ELBOModule
from pyro.poutine.messenger import Messenger

from ..config import OBJECTIVES  # noqa: F401  (the names of the objectives, here with their code)
from ..errors import ConfigError, check_positive
from ..evaluation.marginal import enumerated_log_weights


def step_decay(config):
    """VaDE's schedule as a multiplier of the base rate: ``decay ** (epoch // every)``, floored."""
    floor = min(1.0, config.min_lr / config.lr)

    def factor(epoch):
        return max(config.lr_decay ** (epoch // config.lr_decay_every), floor)

    return factor


class KLScaleMessenger(Messenger):
    """Multiply the log-density of every latent (unobserved) sample site by ``beta`` (the KL warm-up)."""

    def __init__(self, beta=1.0):
        super().__init__()
        self.beta = beta

    @property
    def beta(self):
        return self._beta

    @beta.setter
    def beta(self, value):
        check_positive("beta", value, strict=False, maximum=1.0)
        self._beta = float(value)

    def _process_message(self, msg):
        if msg["type"] == "sample" and not msg["is_observed"] and self._beta != 1.0:
            msg["scale"] = msg["scale"] * self._beta


def kl_scale(fn=None, beta=1.0):
    """:class:`KLScaleMessenger` as a wrapper, decorator or context manager (as ``poutine.scale``)."""
    messenger = KLScaleMessenger(beta)
    return messenger if fn is None else messenger(fn)


def kl_warmup_beta(epoch, warmup_epochs):
    """Beta at (fractional) ``epoch`` of a linear warm-up over ``warmup_epochs`` (0: no warm-up, beta 1)."""
    return 1.0 if warmup_epochs <= 0 else min(1.0, max(0.0, epoch / warmup_epochs))


class IWAEObjective:
    """The importance-weighted bound with ``num_particles`` draws of the guide and the clusters summed
    exactly in each weight (module docstring); ``differentiable_loss(model, guide, x)`` is the negative bound
    summed over the rows of ``x``, as Pyro's ELBOs give theirs."""

    def __init__(self, num_particles):
        check_positive("num_particles", num_particles, integer=True)
        self.num_particles = num_particles

    def differentiable_loss(self, model, guide, x):
        log_weights = enumerated_log_weights(model, guide, x, self.num_particles)  # (K, N)
        return -(log_weights.logsumexp(0) - math.log(self.num_particles)).sum()

    def loss(self, model, guide, x):
        return float(self.differentiable_loss(model, guide, x))


def training_objective(config, strategy, train_model, jit=False):
    """``(elbo, train_model, train_guide, kl_warmup)`` for a :class:`~pyro_gmvae.config.TrainConfig`: the
    strategy's ELBO or the :class:`IWAEObjective` (exact clusters only, as the warm-up's label weight), and the model and the strategy's
    guide under a :class:`KLScaleMessenger` when ``config.kl_warmup_epochs`` is set (else ``kl_warmup`` is
    None); the trainer sets the messenger's ``beta`` at every step (:func:`kl_warmup_beta`)."""
    if config.init_warmup_label_weight and strategy.name != "exact":
        raise ConfigError(f"the warm-up's label weight ({config.init_warmup_label_weight}) is the cross-entropy of the "
                          f"enumerated cluster posterior, but clusters are inferred by {strategy.name!r}; pass "
                          "cluster_inference='exact' (--cluster-inference exact) or init_warmup_label_weight=0 "
                          "(--init-warmup-label-weight 0)")
    if config.objective == "iwae" and strategy.name != "exact":
        raise ConfigError(f"the iwae objective sums the clusters exactly in each weight, but clusters are inferred "
                          f"by {strategy.name!r}; pass cluster_inference='exact' (--cluster-inference exact) or "
                          "objective='elbo' (--objective elbo)")
    train_guide, warmup = strategy.guide, None
    if config.kl_warmup_epochs:  # beta of the KL, in the model and the guide alike
        warmup = KLScaleMessenger(kl_warmup_beta(0, config.kl_warmup_epochs))
        train_model, train_guide = warmup(train_model), warmup(train_guide)
    elbo = (IWAEObjective(config.num_particles) if config.objective == "iwae"
            else strategy.make_elbo(config.num_particles, jit))
    return elbo, train_model, train_guide, warmup


def training_terms(modules):
    """The modules (and submodules) of ``modules`` that define ``training_loss(x)``."""
    return [m for module in modules for m in module.modules() if hasattr(m, "training_loss")]


def training_loss(modules, x):
    """The sum of ``m.training_loss(x)`` over the modules (and their submodules) that define it, or None."""
    terms = [m.training_loss(x) for m in training_terms(modules)]
    return sum(terms[1:], terms[0]) if terms else None


class Objective(ELBOModule):
    """Pyro's :class:`~pyro.infer.elbo.ELBOModule` of ``model`` and ``guide`` (their parameters are its
    parameters), whose loss is that of ``train_model`` and ``train_guide`` (the model under the free-bits
    handler, both under the KL warm-up; default: the model and guide themselves), plus the training-only terms
    of the modules that define ``training_loss`` (module docstring).

    ``scale`` multiplies the loss: the number of data-parallel processes, whose gradients DDP averages
    while the ELBO is a sum over the data (see :mod:`pyro_gmvae.inference.distributed`)."""

    def __init__(self, model, guide, elbo, train_model=None, scale=1, train_guide=None):
        super().__init__(model, guide, elbo)
        self.train_model = model if train_model is None else train_model
        self.train_guide = guide if train_guide is None else train_guide
        self.scale = scale
        # found once, not at every step (a plain list: the modules are registered already, as model's or guide's)
        self.__dict__["_terms"] = training_terms((model, guide))

    def forward(self, x):
        loss = self.elbo.differentiable_loss(self.train_model, self.train_guide, x)
        for module in self._terms:
            loss = loss + module.training_loss(x)
        return loss if self.scale == 1 else loss * self.scale
