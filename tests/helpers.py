"""Hand-written references, independent of Pyro's enumeration machinery."""

import math

import torch

from pyro_gmvae.models.priors import positive

# Small, mutually distinct sizes so that a swapped axis fails loudly.
BATCH, NUM_CLUSTERS, LATENT_DIM, DATA_DIM, NOISE_DIM = 3, 4, 5, 6, 2


def normal_log_prob(x, loc, scale):
    return (-0.5 * ((x - loc) / scale) ** 2 - scale.log() - 0.5 * math.log(2 * math.pi)).sum(-1)


def bernoulli_log_prob(x, logits):
    return (x * logits - torch.nn.functional.softplus(logits)).sum(-1)


def continuous_bernoulli_log_prob(x, logits):
    """log C(lambda) + x log lambda + (1 - x) log(1 - lambda), C(lambda) = 2 artanh(1 - 2 lambda) / (1 - 2 lambda)
    (Loaiza-Ganem and Cunningham 2019), lambda = sigmoid(logits); not for logits within ~1e-6 of 0."""
    lam = torch.sigmoid(logits)
    log_c = torch.log(2 * torch.atanh(1 - 2 * lam) / (1 - 2 * lam))
    return (log_c + x * torch.log(lam) + (1 - x) * torch.log1p(-lam)).sum(-1)


def decoder_log_prob(decoder, z, x):
    out = decoder.net(z)
    if decoder.likelihood == "bernoulli":
        return bernoulli_log_prob(x, out)
    if decoder.likelihood == "continuous-bernoulli":
        return continuous_bernoulli_log_prob(x, out)
    return normal_log_prob(x, out, positive(decoder.scale_raw))


def guide_normal(guide, site, x):
    """loc, scale of a diagonal guide head, from its Linear layers."""
    h = guide.encoder(x)
    head = guide.heads[site]
    return head.loc(h), positive(head.scale_raw(h))


def vade_cluster_log_joint(prior, z):
    """``log pi_k + log N(z; loc_k, scale_k)`` for every k, a loop over clusters: ``(..., K)``."""
    log_pi = torch.log_softmax(prior.logits, -1)
    scale = positive(prior.scale_raw)
    return torch.stack([log_pi[k] + normal_log_prob(z, prior.loc[k], scale[k])
                        for k in range(prior.num_clusters)], -1)


def gmvae_cluster_log_joint(prior, z, w):
    """``log(1/K) + log N(z; loc_k(w), scale_k(w))`` for every k, a loop over clusters."""
    h = torch.tanh(prior.hidden[0](w))
    k_all = prior.num_clusters
    loc = prior.loc_heads(h).reshape(w.shape[:-1] + (k_all, -1))
    scale = positive(prior.scale_heads(h)).reshape(w.shape[:-1] + (k_all, -1))
    return torch.stack([-math.log(k_all) + normal_log_prob(z, loc[..., k, :], scale[..., k, :])
                        for k in range(k_all)], -1)


def assert_elbo_matches(model, guide, x, hand_written, *, seed=1, rtol=1e-6):
    """TraceEnum_ELBO's loss and every parameter gradient equal ``hand_written(guide_trace)`` computed
    from the same guide noise (the same seed before both)."""
    import pyro
    from pyro import poutine

    from pyro_gmvae import make_elbo

    params = [p for m in (model, guide) for p in m.parameters()]
    pyro.set_rng_seed(seed)
    loss = make_elbo().differentiable_loss(model, guide, x)
    grads = torch.autograd.grad(loss, params)
    pyro.set_rng_seed(seed)
    expected = hand_written(poutine.trace(guide).get_trace(x))
    expected_grads = torch.autograd.grad(expected, params)
    assert torch.allclose(loss, expected, rtol=rtol, atol=0), (loss, expected)
    for g, e in zip(grads, expected_grads):
        assert torch.allclose(g, e, rtol=rtol, atol=1e-10)
