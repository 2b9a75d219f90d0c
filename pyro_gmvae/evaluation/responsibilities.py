"""Posterior cluster responsibilities ``p(cluster | x)`` by exact enumeration.

The continuous latents are set to the guide's mean (or sampled ``num_samples`` times and
averaged); every enumerated site's posterior given them is then exact, computed by Pyro's
``TraceEnum_ELBO.compute_marginals`` (nested enumerated sites included). Pyro's contraction refuses
an enumerated site of a single value (``num_clusters=1``, or one super-cluster); those models get
the same posteriors from the brute-force joint table over every enumerated site.
"""

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from ..inference.elbo import make_elbo
from ..errors import check_positive
from .inputs import cluster_site, model_input


def _guide_at(guide, x, use_mean):
    trace = poutine.trace(guide).get_trace(x)
    if use_mean:
        for site in trace.nodes.values():
            if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site):
                site["value"] = site["fn"].mean
    return poutine.replay(guide, trace=trace)


def _brute_force_marginals(model, guide, x):
    """``{site: (enum dims..., N) probabilities}``: the joint table of every model factor, summed over
    the other enumerated sites and normalised, exact for any nesting (and for sites of one value)."""
    guide_trace = poutine.trace(guide).get_trace(x)
    trace = poutine.trace(poutine.replay(poutine.enum(model, first_available_dim=-2),
                                         trace=guide_trace)).get_trace(x)
    trace.compute_log_prob()
    sites = [s for s in trace.nodes.values() if s["type"] == "sample" and not site_is_subsample(s)]
    log_joint = sum(s["log_prob"] for s in sites)
    enum_dims = {s["name"]: s["infer"]["_enumerate_dim"] for s in sites if "_enumerate_dim" in s["infer"]}
    depth = max([-d for d in enum_dims.values()] + [1])
    log_joint = log_joint.reshape((1,) * (depth - log_joint.dim()) + tuple(log_joint.shape))
    out = {}
    for name, dim in enum_dims.items():
        others = [d for d in enum_dims.values() if d != dim]
        table = log_joint.logsumexp(others, keepdim=True) if others else log_joint
        probs = (table - table.logsumexp(dim, keepdim=True)).exp()
        out[name] = probs.movedim(dim, 0).reshape(probs.shape[dim], -1).T.reshape(-1, probs.shape[dim])
    return out


def _marginals(elbo, model, guide, x):
    try:
        return {name: d.probs for name, d in elbo.compute_marginals(model, guide, x).items()}
    except AssertionError:  # an enumerated site of one value, which Pyro's contraction refuses
        return _brute_force_marginals(model, guide, x)


@torch.no_grad()
def cluster_marginals(model, guide, x, *, batch_size=1000, use_mean=True, num_samples=1):
    """``{site: (N, K_site) probabilities}`` for every enumerated site of ``model``.

    ``x`` is ``(N, D)`` (a tensor, an array or a :class:`~pyro_gmvae.data.Dataset`); it is moved to the
    model's device and dtype. Raises :class:`~pyro_gmvae.errors.DataError` for data the model cannot
    read and :class:`~pyro_gmvae.errors.ConfigError` for a model without clusters or a bad count.
    """
    cluster_site(model)
    check_positive("batch_size", batch_size, integer=True)
    check_positive("num_samples", num_samples, integer=True)
    x = model_input(model, x)
    elbo = make_elbo()
    out = {}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        n = xb.shape[0]
        if n == 1:  # Pyro's contraction mistakes a data plate of size 1 for a broadcast dim
            xb = xb.expand(2, -1)
        acc = {}
        for _ in range(1 if use_mean else num_samples):
            marginals = _marginals(elbo, model, _guide_at(guide, xb, use_mean), xb)
            for name, p in marginals.items():
                probs = p.reshape(-1, xb.shape[0], p.shape[-1])[-1, :n]
                acc[name] = acc.get(name, 0) + probs
        for name, p in acc.items():
            out.setdefault(name, []).append(p / (1 if use_mean else num_samples))
    return {name: torch.cat(chunks) for name, chunks in out.items()}


def responsibilities(model, guide, x, *, site=None, **kwargs):
    """``(N, K)`` posterior probabilities of the cluster site (the model's finest by default)."""
    site = cluster_site(model, site)
    return cluster_marginals(model, guide, x, **kwargs)[site]


def predict(model, guide, x, **kwargs):
    """The most probable cluster of each datapoint, shape ``(N,)``."""
    return responsibilities(model, guide, x, **kwargs).argmax(-1)
