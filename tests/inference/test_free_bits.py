"""The free-bits handler against a hand-written objective ELBO - N * relu(lam - KL_mean)."""

import math

import pyro
import pytest
import torch
from pyro import poutine

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, decoder_log_prob,
                     gmvae_cluster_log_joint, guide_normal, normal_log_prob, vade_cluster_log_joint)
from pyro_gmvae import ConfigError, ModelConfig, build, free_bits, make_elbo
from pyro_gmvae.inference.free_bits import FreeBitsMessenger


def _setup(name, prior=None):
    model, guide = build(ModelConfig(model=name, prior=prior, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     latent_dim=LATENT_DIM, noise_dim=NOISE_DIM, network="toy"))
    return model, guide, torch.rand(BATCH, DATA_DIM)


def _guide_samples(guide, x, seed, num_particles=None):
    pyro.set_rng_seed(seed)
    if num_particles is None:
        return poutine.trace(guide).get_trace(x)
    with pyro.plate("num_particles_vectorized", num_particles, dim=-2):
        return poutine.trace(guide).get_trace(x)


def reference(model, guide, x, tr, lam, particle=None):
    """-(ELBO - N relu(lam - mean_n KL(p(k | z, w) || p(k)))), written without Pyro's enumeration."""
    pick = (lambda v: v) if particle is None else (lambda v: v[particle])
    z = pick(tr.nodes["z"]["value"])
    loc, scale = guide_normal(guide, "z", x)
    elbo = decoder_log_prob(model.decoder, z, x) - normal_log_prob(z, loc, scale)
    if "w" in tr.nodes:
        w = pick(tr.nodes["w"]["value"])
        joint = gmvae_cluster_log_joint(model.prior, z, w)
        log_prior = torch.full((NUM_CLUSTERS,), -math.log(NUM_CLUSTERS))
        wloc, wscale = guide_normal(guide, "w", x)
        elbo = elbo + normal_log_prob(w, torch.zeros_like(w), torch.ones_like(w)) - normal_log_prob(w, wloc, wscale)
    else:
        joint = vade_cluster_log_joint(model.prior, z)
        log_prior = torch.log_softmax(model.prior.logits, -1)
    log_r = joint - joint.logsumexp(-1, keepdim=True)
    kl = (log_r.exp() * (log_r - log_prior)).sum(-1)
    elbo = (elbo + joint.logsumexp(-1)).sum()
    return -(elbo - BATCH * torch.relu(lam - kl.mean())), kl.mean()


def _params(model, guide):
    return [p for m in (model, guide) for p in m.parameters()]


def _loss_and_grads(elbo, model, guide, x, seed, fn):
    pyro.set_rng_seed(seed)
    loss = elbo.differentiable_loss(fn, guide, x)
    return loss, torch.autograd.grad(loss, _params(model, guide))


def _assert_close(a, b):
    assert torch.allclose(a[0], b[0], rtol=1e-6, atol=0), (a[0], b[0])
    for g, e in zip(a[1], b[1]):
        assert torch.allclose(g, e, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("name", ["vade", "gmvae"])
@pytest.mark.parametrize("num_particles", [1, 3])
def test_lambda_zero_changes_nothing(float64, name, num_particles):
    model, guide, x = _setup(name)
    elbo = make_elbo(num_particles)
    plain = _loss_and_grads(elbo, model, guide, x, 3, model)
    handled = _loss_and_grads(elbo, model, guide, x, 3, free_bits(model, lam=0.0))
    assert torch.equal(plain[0], handled[0])
    for g, e in zip(plain[1], handled[1]):
        assert torch.equal(g, e)


@pytest.mark.parametrize("name", ["vade", "gmvae"])
@pytest.mark.parametrize("above", [True, False])
def test_matches_hand_written_objective(float64, name, above):
    model, guide, x = _setup(name)
    tr = _guide_samples(guide, x, 4)
    _, kl = reference(model, guide, x, tr, 0.0)
    kl = kl.detach()
    lam = float(kl) + 2.0 if above else float(kl) / 2
    expected_loss, _ = reference(model, guide, x, tr, lam)
    expected = (expected_loss, torch.autograd.grad(expected_loss, _params(model, guide)))
    handler = FreeBitsMessenger(lam)
    got = _loss_and_grads(make_elbo(), model, guide, x, 4, handler(model))
    _assert_close(got, expected)
    assert math.isclose(float(handler.kl), float(kl), rel_tol=1e-9)
    if not above:  # below the KL the constraint is inactive: the plain ELBO
        _assert_close(got, _loss_and_grads(make_elbo(), model, guide, x, 4, model))


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_vectorized_particles_count_the_correction_once_per_particle(float64, name):
    model, guide, x = _setup(name)
    num_particles, lam = 5, 3.0
    tr = _guide_samples(guide, x, 5, num_particles)
    per_particle = [reference(model, guide, x, tr, lam, particle=m)[0] for m in range(num_particles)]
    expected_loss = torch.stack(per_particle).mean()
    expected = (expected_loss, torch.autograd.grad(expected_loss, _params(model, guide)))
    got = _loss_and_grads(make_elbo(num_particles), model, guide, x, 5, free_bits(model, lam=lam))
    _assert_close(got, expected)


@pytest.mark.parametrize("num_particles", [1, 4])
def test_jit_gives_the_same_loss(float64, num_particles):
    model, guide, x = _setup("gmvae")
    fn = free_bits(model, lam=3.0)
    pyro.set_rng_seed(6)
    plain = make_elbo(num_particles).loss(fn, guide, x)
    pyro.set_rng_seed(6)
    jitted = make_elbo(num_particles, jit=True).loss(fn, guide, x)
    assert math.isclose(plain, jitted, rel_tol=1e-9)


def test_cluster_stays_enumerated_under_the_handler(float64):
    model, guide, x = _setup("vade")
    model_trace, _ = next(make_elbo()._get_traces(free_bits(model, lam=1.0), guide, (x,), {}))
    site = model_trace.nodes["cluster"]
    assert "_enumerate_dim" in site["infer"]
    assert site["value"].reshape(-1).tolist() == list(range(NUM_CLUSTERS))
    assert "_free_bits_penalty" in model_trace.nodes


@pytest.mark.parametrize("group", ["site", "dim", 1, 5])
def test_guided_site_free_bits_match_kingma(float64, group):
    """VAE prior: KL_j = log q(z_j|x) - log N(z_j; 0, 1) per dimension, constrained per group."""
    model, guide, x = _setup("vae")
    lam = 0.7
    tr = _guide_samples(guide, x, 7)
    z = tr.nodes["z"]["value"]
    loc, scale = guide_normal(guide, "z", x)
    per_dim = (torch.distributions.Normal(loc, scale).log_prob(z) - torch.distributions.Normal(0.0, 1.0).log_prob(z))
    size = LATENT_DIM if group == "site" else (1 if group == "dim" else group)
    kl = per_dim.reshape(BATCH, LATENT_DIM // size, size).sum(-1).mean(0)
    elbo = (decoder_log_prob(model.decoder, z, x) - per_dim.sum(-1)).sum()
    expected_loss = -(elbo - BATCH * torch.relu(lam - kl).sum())
    expected = (expected_loss, torch.autograd.grad(expected_loss, _params(model, guide)))
    got = _loss_and_grads(make_elbo(), model, guide, x, 7, free_bits(model, lam=lam, site="z", group=group))
    _assert_close(got, expected)


def test_guided_site_with_enumerated_parent_sums_it_out(float64):
    """VaDE's z: KL = log q(z|x) - log sum_k pi_k N(z; loc_k, scale_k)."""
    model, guide, x = _setup("vade")
    lam = 50.0
    tr = _guide_samples(guide, x, 8)
    z = tr.nodes["z"]["value"]
    loc, scale = guide_normal(guide, "z", x)
    joint = vade_cluster_log_joint(model.prior, z)
    kl = normal_log_prob(z, loc, scale) - joint.logsumexp(-1)
    elbo = (decoder_log_prob(model.decoder, z, x) - normal_log_prob(z, loc, scale) + joint.logsumexp(-1)).sum()
    expected_loss = -(elbo - BATCH * torch.relu(lam - kl.mean()))
    expected = (expected_loss, torch.autograd.grad(expected_loss, _params(model, guide)))
    got = _loss_and_grads(make_elbo(), model, guide, x, 8, free_bits(model, lam=lam, site="z"))
    _assert_close(got, expected)


@pytest.mark.parametrize("kwargs,message", [
    ({"lam": -0.5}, "free-bits lam must be >= 0 nats"),
    ({"lam": 1.0, "group": 0}, "free-bits group must be 'site', 'dim' or a positive int"),
])
def test_bad_arguments_fail_at_construction(kwargs, message):
    model, _, _ = _setup("vade")
    with pytest.raises(ConfigError, match=message):
        free_bits(model, **kwargs)


@pytest.mark.parametrize("name,site,group,message", [
    ("vade", "nope", "site", "free-bits site 'nope' is not a sample site of the model"),
    ("vade", "x", "site", "free-bits site 'x' is neither enumerated nor supplied by the guide"),
    ("vade", "cluster", "dim", "free-bits group must be 'site' for an enumerated site"),
    ("vade", "z", "dim", "has enumerated parents, so its KL does not factorise"),
])
def test_bad_sites_are_named(name, site, group, message):
    model, guide, x = _setup(name)
    with pytest.raises(ConfigError, match=message):
        make_elbo().loss(free_bits(model, lam=1.0, site=site, group=group), guide, x)


def test_wrapper_decorator_and_context_manager_give_one_loss(float64):
    """``free_bits`` is one handler used three ways (as Pyro's ``poutine.scale``): the same loss each way."""
    model, guide, x = _setup("vade")
    wrapped = _loss_and_grads(make_elbo(), model, guide, x, 9, free_bits(model, lam=3.0))
    decorated = _loss_and_grads(make_elbo(), model, guide, x, 9, free_bits(lam=3.0)(model))

    def in_context(data):
        with free_bits(lam=3.0):
            return model(data)

    managed = _loss_and_grads(make_elbo(), model, guide, x, 9, in_context)
    assert torch.equal(wrapped[0], decorated[0]) and torch.equal(wrapped[0], managed[0])
    assert free_bits(model, lam=3.0).__wrapped__ is model


def test_reduce_is_checked_at_construction():
    with pytest.raises(ConfigError, match="reduce must be a function"):
        FreeBitsMessenger(1.0, reduce=3)
