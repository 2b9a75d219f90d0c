"""The continuous latents of a model as one flat vector per datapoint, and the densities the
estimators need at any value of them, with every cluster summed out exactly.

The estimators beyond plain importance sampling (:mod:`.refined`, :mod:`.ais`) move the
continuous latents themselves (Adam steps, HMC), so they need

.. math::

    \\log p(x, z) = \\log \\sum_c p(x, c, z)

at values ``z`` they choose, differentiable in ``z``, for every chain and datapoint at once. It is
computed by the model's own Pyro program: :func:`pyro.poutine.condition` fixes the continuous
sites, :func:`pyro.poutine.enum` enumerates the discrete ones in parallel, and a ``logsumexp``
over all enumeration dims of the summed log-factors does the sum, as
:func:`~pyro_gmvae.evaluation.marginal.importance_log_weights` does with the guide's draws.
"""

import math

import pyro
import pyro.distributions as dist
import torch
from pyro import poutine

from ..errors import ConfigError
from .marginal import SAMPLE_PLATE, sample_sites, summed_log_joint


class LatentSpace:
    """The continuous sites a guide samples (``z``, and GMVAE's ``w``), flattened and concatenated:
    a value is a tensor ``(..., N, dim)``, ``dim`` the sum of the sites' event sizes.

    ``site_dists`` holds the guide's distribution of every site given the datapoints (batch
    ``(N,)``); ``loc`` / ``scale`` their means and standard deviations, flat ``(N, dim)``. A flow guide's site
    (a ``TransformedDistribution``, e.g. ``--guide iaf``) is held as the diagonal Normal of its moments: AIS
    starts its chains there and ``is`` fits its proposal from there (any normalised density is a valid start or
    proposal), since the flow's inverse, which ``log q`` at an arbitrary point needs, can overflow far from its
    mass; ``is-guide`` draws from the flow itself.
    """

    def __init__(self, guide, x):
        trace = poutine.trace(guide).get_trace(x)
        self.site_dists, self.shapes = {}, {}
        for site in sample_sites(trace):
            if site["infer"].get("enumerate"):
                raise ConfigError(f"guide site {site['name']!r} is enumerated; the estimators sum discrete sites "
                                  "out in the model, so leave them out of the guide")
            fn = site["fn"]
            if tuple(fn.batch_shape) not in ((x.shape[0],), ()):
                raise ConfigError(f"guide site {site['name']!r} has batch shape {tuple(fn.batch_shape)}, expected "
                                  f"({x.shape[0]},); sample every latent inside the data plate with its dims as "
                                  "event dims (to_event)")
            self.site_dists[site["name"]] = fn
            self.shapes[site["name"]] = tuple(fn.event_shape)
        if not self.site_dists:
            raise ConfigError("the guide samples no continuous latent; the estimators need at least one")
        self._check_mean_field(guide, x)
        self.num_datapoints = x.shape[0]
        shape = (x.shape[0],)
        self.loc = self.flatten({n: d.mean.expand(shape + d.event_shape) for n, d in self.site_dists.items()}).detach()
        self.scale = self.flatten({n: d.stddev.expand(shape + d.event_shape)
                                   for n, d in self.site_dists.items()}).detach()
        for name, d in self.site_dists.items():
            if isinstance(d, dist.TransformedDistribution):  # a flow: its inverse can overflow far from its mass
                self.site_dists[name] = dist.Normal(d.mean.detach(), d.stddev.detach()).to_event(len(d.event_shape))

    def _check_mean_field(self, guide, x):
        """The cached site distributions are q's only if no guide site depends on another's draw."""
        with poutine.block():
            replayed = poutine.trace(guide).get_trace(x)
        for name, site in replayed.nodes.items():
            if name in self.site_dists:
                value = site["value"]
                # a structural check: a dependence changes log q by O(1); a flow's inverse rounds off ~1e-7
                if not torch.allclose(site["fn"].log_prob(value), self.site_dists[name].log_prob(value), atol=1e-4):
                    raise ConfigError(f"guide site {name!r} depends on another site's draw; the estimators need a "
                                      "guide whose sites depend on x only (an amortized mean-field guide)")

    @property
    def names(self):
        return tuple(self.shapes)

    @property
    def dim(self):
        return sum(math.prod(s) for s in self.shapes.values())

    def flatten(self, values):
        """``{site: (..., N, *event)}`` -> ``(..., N, dim)``."""
        return torch.cat([values[n].reshape(values[n].shape[:values[n].dim() - len(s)] + (-1,))
                          for n, s in self.shapes.items()], -1)

    def unflatten(self, flat):
        """``(..., N, dim)`` -> ``{site: (..., N, *event)}``."""
        out, start = {}, 0
        for name, shape in self.shapes.items():
            size = math.prod(shape)
            out[name] = flat[..., start:start + size].reshape(flat.shape[:-1] + shape)
            start += size
        return out

    def log_q(self, flat):
        """``(S, N)`` log-density of the guide at flat values ``(S, N, dim)``."""
        values = self.unflatten(flat)
        return sum(d.log_prob(values[n]) for n, d in self.site_dists.items())

    def sample_q(self, num_samples):
        """``(num_samples, N, dim)`` draws of the guide (reparameterized where the guide is)."""
        return self.flatten({n: d.rsample((num_samples,)) if d.has_rsample else d.sample((num_samples,))
                             for n, d in self.site_dists.items()})


def log_joint(model, x, space, flat, given=None):
    """``(S, N)`` values of ``log sum_c p(x_n, c, z_sn)`` at flat latents ``flat`` ``(S, N, dim)``
    (differentiable in ``flat``): the model's trace with the continuous sites conditioned on ``flat``
    and every discrete site enumerated and summed out, except those fixed by ``given``
    (``{site: (N,) values}``, e.g. one cluster per datapoint)."""
    num_samples, n = flat.shape[0], x.shape[0]
    values = dict(space.unflatten(flat), **(given or {}))
    with pyro.plate(SAMPLE_PLATE, num_samples, dim=-2):
        trace = poutine.trace(poutine.enum(poutine.condition(model, data=values),
                                           first_available_dim=-3)).get_trace(x)
    trace.compute_log_prob()
    return summed_log_joint(trace, num_samples, n, supplied=values)


def log_joint_and_grad(model, x, space, flat):
    """``log p(x, z)`` ``(S, N)`` and its gradient in ``z`` ``(S, N, dim)``, both detached. Datapoints
    and samples are independent, so the gradient of the sum is every point's own gradient."""
    with torch.enable_grad():
        flat = flat.detach().requires_grad_(True)
        value = log_joint(model, x, space, flat)
        (grad,) = torch.autograd.grad(value.sum(), flat)
    return value.detach(), grad


@torch.no_grad()
def simulate(model, like):
    """``(x, {site: value})``: one datapoint per row of ``like`` drawn from the model's joint, with the
    continuous latents that generated it: exact posterior draws, where BDMC starts its
    reverse chains. ``like`` ``(N, D)`` fixes the data's shape, dtype and device."""
    observed = [s["name"] for s in sample_sites(poutine.trace(model).get_trace(like)) if s["is_observed"]]
    if len(observed) != 1:
        raise ConfigError(f"the model observes {len(observed)} sites, expected one (x); simulate needs model(x) "
                          "to observe x once")
    trace = poutine.trace(poutine.uncondition(model)).get_trace(like)
    latents = {s["name"]: s["value"] for s in sample_sites(trace)
               if not s["is_observed"] and s["name"] != observed[0] and s["value"].is_floating_point()}
    return trace.nodes[observed[0]]["value"], latents
