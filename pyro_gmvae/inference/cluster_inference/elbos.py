"""The Pyro ELBOs that train the cluster inference strategies: TraceEnum_ELBO with an enumerated guide
(quiet about the free-bits penalty), and TraceGraph_ELBO with a differentiable loss (score function)."""

import warnings
import weakref

from pyro.infer import JitTraceEnum_ELBO, JitTraceGraph_ELBO, TraceEnum_ELBO, TraceGraph_ELBO
from pyro.ops.jit import trace

from ..elbo import MAX_PLATE_NESTING
from ..free_bits import PENALTY_SITE


def make_strategy_elbo(cls, jit_cls, num_particles, jit, **kwargs):
    """``cls`` (or ``jit_cls`` with ``jit``) with ``num_particles`` vectorized particles."""
    if jit:
        cls, kwargs = jit_cls, {**kwargs, "ignore_jit_warnings": True}
    return cls(max_plate_nesting=MAX_PLATE_NESTING, num_particles=num_particles,
               vectorize_particles=num_particles > 1, **kwargs)


class _QuietPenalty:
    """Pyro warns that the free-bits penalty (outside the data plate) may depend on the guide's enumerated
    cluster (inside it); it does not: it is computed from the logits of q(c | x) and p(c), never from the
    enumerated value."""

    def _get_trace(self, *args, **kwargs):
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=f'at model site "{PENALTY_SITE}", possibly invalid dependency')
            return super()._get_trace(*args, **kwargs)


class EnumeratedGuideELBO(_QuietPenalty, TraceEnum_ELBO):
    pass


class JitEnumeratedGuideELBO(_QuietPenalty, JitTraceEnum_ELBO):
    pass


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
