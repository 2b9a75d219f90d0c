"""Generation per cluster: draw from the prior conditioned on each cluster, and decode.

>>> from pyro_gmvae import ModelConfig, build
>>> model, _ = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> sample_per_cluster(model, 4).shape
torch.Size([3, 4, 6])
"""

import pyro
import torch
from pyro import poutine

from ..errors import ConfigError
from ..sites import CLUSTER, DATA_PLATE

#: Prior draws per kept sample when the cluster site has enumerated parents (see below).
_RESAMPLE_FACTOR = 64


def _conditioned_prior_trace(prior, site, k, num):
    cond = poutine.condition(prior, data={site: torch.full((num,), k, dtype=torch.long, device=_device(prior))})
    with pyro.plate(DATA_PLATE, num):
        return poutine.trace(cond).get_trace()


def _device(module):
    for t in list(module.parameters()) + list(module.buffers()):
        return t.device
    return torch.device("cpu")


@torch.no_grad()
def sample_latents_per_cluster(prior, num_per_cluster, site=CLUSTER):
    """``(K, num_per_cluster, latent_dim)`` draws of ``z`` from ``prior`` given ``site = k`` for each k.

    When ``site`` is the prior's only enumerated site, ``z`` is drawn directly from
    ``poutine.condition(prior, {site: k})``. When it has enumerated parents (``super_cluster``),
    conditioning alone would draw the parents from their prior, not from ``p(parents | site = k)``;
    the draws are then resampled with weights ``p(site = k | parents)`` (sampling-importance-resampling
    over 64 prior draws per kept sample, exact as the number of draws grows).
    """
    if site not in getattr(prior, "cluster_sites", ()):
        raise ConfigError(f"the prior has no enumerated site {site!r} (its cluster sites: "
                          f"{tuple(getattr(prior, 'cluster_sites', ()))}); samples per cluster need a mixture prior")
    has_parents = tuple(prior.cluster_sites).index(site) > 0
    num_clusters = prior.num_clusters if site == CLUSTER else getattr(prior, f"num_{site}s")
    out = []
    for k in range(num_clusters):
        if not has_parents:
            trace = _conditioned_prior_trace(prior, site, k, num_per_cluster)
            out.append(trace.nodes["_RETURN"]["value"])
            continue
        num = num_per_cluster * _RESAMPLE_FACTOR
        trace = _conditioned_prior_trace(prior, site, k, num)
        log_w = trace.nodes[site]["fn"].log_prob(trace.nodes[site]["value"])
        idx = torch.distributions.Categorical(logits=log_w).sample((num_per_cluster,))
        out.append(trace.nodes["_RETURN"]["value"][idx])
    return torch.stack(out)


@torch.no_grad()
def sample_per_cluster(model, num_per_cluster, site=CLUSTER):
    """``(K, num_per_cluster, data_dim)`` decoded means (Bernoulli probabilities or Normal locs) of
    prior draws conditioned on each value of ``site``."""
    z = sample_latents_per_cluster(model.prior, num_per_cluster, site)
    return model.decoder.x_dist(z).mean
