"""Posterior cluster responsibilities ``p(cluster | x)`` by exact enumeration.

The continuous latents are set to the guide's mean (or sampled ``num_samples`` times and
averaged); every enumerated site's posterior given them is then exact, computed by Pyro's
``TraceEnum_ELBO.compute_marginals`` (nested enumerated sites included).
"""

import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample

from ..inference.elbo import make_elbo


def _guide_at(guide, x, use_mean):
    trace = poutine.trace(guide).get_trace(x)
    if use_mean:
        for site in trace.nodes.values():
            if site["type"] == "sample" and not site["is_observed"] and not site_is_subsample(site):
                site["value"] = site["fn"].mean
    return poutine.replay(guide, trace=trace)


@torch.no_grad()
def cluster_marginals(model, guide, x, *, batch_size=1000, use_mean=True, num_samples=1):
    """``{site: (N, K_site) probabilities}`` for every enumerated site of ``model``."""
    elbo = make_elbo()
    out = {}
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        n = xb.shape[0]
        if n == 1:  # Pyro's contraction mistakes a data plate of size 1 for a broadcast dim
            xb = xb.expand(2, -1)
        acc = {}
        for _ in range(1 if use_mean else num_samples):
            marginals = elbo.compute_marginals(model, _guide_at(guide, xb, use_mean), xb)
            for name, d in marginals.items():
                probs = d.probs.reshape(-1, xb.shape[0], d.probs.shape[-1])[-1, :n]
                acc[name] = acc.get(name, 0) + probs
        for name, p in acc.items():
            out.setdefault(name, []).append(p / (1 if use_mean else num_samples))
    return {name: torch.cat(chunks) for name, chunks in out.items()}


def responsibilities(model, guide, x, *, site=None, **kwargs):
    """``(N, K)`` posterior probabilities of the cluster site (the model's finest by default)."""
    site = site or model.cluster_sites[-1]
    return cluster_marginals(model, guide, x, **kwargs)[site]


def predict(model, guide, x, **kwargs):
    """The most probable cluster of each datapoint, shape ``(N,)``."""
    return responsibilities(model, guide, x, **kwargs).argmax(-1)
