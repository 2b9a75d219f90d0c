"""The importance-weighted bound, the KL warm-up and training-only terms, against hand-written losses in float64."""

import math

import pyro
import pytest
import torch

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NUM_CLUSTERS, decoder_log_prob, guide_normal, normal_log_prob,
                     vade_cluster_log_joint)
from pyro_gmvae import ConfigError, ModelConfig, TrainConfig, build, make_elbo
from pyro_gmvae.data import from_tensor
from pyro_gmvae.evaluation.marginal import elbo_per_datapoint, log_marginal_likelihood
from pyro_gmvae.inference.objective import IWAEObjective, Objective, kl_scale, kl_warmup_beta
from pyro_gmvae.inference.training import Trainer

PARTICLES = 3


def _vade(likelihood="normal"):
    return build(ModelConfig(model="vade", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                             likelihood=likelihood, network="toy"))


def test_iwae_is_a_loop_over_particles_and_clusters(float64):
    model, guide = _vade()
    x = torch.randn(BATCH, DATA_DIM)
    params = [p for m in (model, guide) for p in m.parameters()]
    pyro.set_rng_seed(5)
    loss = IWAEObjective(PARTICLES).differentiable_loss(model, guide, x)
    grads = torch.autograd.grad(loss, params)
    pyro.set_rng_seed(5)
    loc, scale = guide_normal(guide, "z", x)
    z = torch.distributions.Normal(loc, scale).rsample((PARTICLES,))  # the same draws, (particles, batch, dim)
    expected = 0.0
    for n in range(BATCH):
        log_w = []
        for k in range(PARTICLES):
            joint = [vade_cluster_log_joint(model.prior, z[k, n])[c] for c in range(NUM_CLUSTERS)]
            log_w.append(torch.logsumexp(torch.stack(joint), 0) + decoder_log_prob(model.decoder, z[k, n], x[n])
                         - normal_log_prob(z[k, n], loc[n], scale[n]))
        expected = expected - (torch.logsumexp(torch.stack(log_w), 0) - math.log(PARTICLES))
    assert torch.allclose(loss, expected, rtol=1e-10, atol=0)
    for g, e in zip(grads, torch.autograd.grad(expected, params)):
        assert torch.allclose(g, e, rtol=1e-8, atol=1e-10)


def test_iwae_with_one_particle_is_the_elbo(float64):
    model, guide = _vade()
    x = torch.randn(BATCH, DATA_DIM)
    pyro.set_rng_seed(2)
    iwae = IWAEObjective(1).differentiable_loss(model, guide, x)
    pyro.set_rng_seed(2)
    assert torch.allclose(iwae, make_elbo().differentiable_loss(model, guide, x), rtol=1e-10)


@pytest.mark.parametrize("beta", [0.0, 0.3, 1.0])
def test_kl_warmup_scales_the_kl_only(beta, float64):
    model, guide = _vade("bernoulli")
    x = torch.rand(BATCH, DATA_DIM).round()
    scale_kl = kl_scale(beta=beta)
    pyro.set_rng_seed(4)
    loss = make_elbo().differentiable_loss(scale_kl(model), scale_kl(guide), x)
    pyro.set_rng_seed(4)
    loc, scale = guide_normal(guide, "z", x)
    z = torch.distributions.Normal(loc, scale).rsample()
    log_prior = torch.logsumexp(vade_cluster_log_joint(model.prior, z), -1)  # the clusters summed, then scaled
    kl = normal_log_prob(z, loc, scale) - log_prior
    expected = -(decoder_log_prob(model.decoder, z, x) - beta * kl).sum()
    assert torch.allclose(loss, expected, rtol=1e-10, atol=1e-12)


def test_the_warmup_schedule_rises_linearly_per_step():
    assert [kl_warmup_beta(e, 4) for e in (0, 1, 2.5, 4, 9)] == [0.0, 0.25, 0.625, 1.0, 1.0]
    assert kl_warmup_beta(0, 0) == 1.0
    model, guide = _vade()
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=10, kl_warmup_epochs=4), progress=False)
    seen = []
    step = trainer._step
    trainer._step = lambda xb: (seen.append(trainer.kl_warmup.beta), step(xb))[1]
    history = trainer.fit(from_tensor(torch.randn(20, DATA_DIM), likelihood="normal"))
    assert seen == [0.0, 0.125, 0.25, 0.375] and not trainer.jit
    assert [row["kl_beta"] for row in history] == [0.125, 0.375]  # the last step's beta of each epoch


class _Penalised(torch.nn.Module):
    """A training-only term: 3 * sum(loc ** 2) of the prior, through the ``training_loss`` hook."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def training_loss(self, x):
        return 3.0 * (self.prior.loc ** 2).sum()


def test_a_training_only_term_is_optimised_and_never_estimated(float64):
    model, guide = _vade()
    x = torch.randn(BATCH, DATA_DIM)
    plain = Objective(model, guide, make_elbo())
    pyro.set_rng_seed(1)
    without = plain(x)
    model.penalty = _Penalised(model.prior)  # any module of the model (or guide) may define training_loss
    pyro.set_rng_seed(1)
    with_term = Objective(model, guide, make_elbo())(x)
    assert torch.allclose(with_term - without, 3.0 * (model.prior.loc ** 2).sum(), rtol=1e-12)
    # the estimators replay the model: they never see the term
    estimates = []
    for attach in (False, True):
        if not attach:
            del model.penalty
        else:
            model.penalty = _Penalised(model.prior)
        pyro.set_rng_seed(7)
        estimates.append((log_marginal_likelihood(model, guide, x, num_samples=20),
                          elbo_per_datapoint(model, guide, x, num_samples=4)))
    assert all(torch.equal(a, b) for a, b in zip(*estimates))


@pytest.mark.parametrize("kw, message", [
    (dict(objective="iwae"), "needs several particles"),
    (dict(objective="iwae", num_particles=3, free_bits=0.5), "free_bits .* with objective='iwae' pass free_bits=0"),
    (dict(objective="iwae", num_particles=3, kl_warmup_epochs=3), "kl_warmup_epochs"),
    (dict(objective="iwea"), "objective"),
    (dict(kl_warmup_epochs=-1), "kl_warmup_epochs"),
])
def test_bad_objective_settings_are_one_line(kw, message):
    with pytest.raises(ConfigError, match=message) as e:
        TrainConfig(**kw)
    assert "\n" not in str(e.value)


def test_iwae_refuses_a_guided_cluster_inference():
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy", cluster_inference="amortized"))
    with pytest.raises(ConfigError, match="iwae objective sums the clusters exactly.*--cluster-inference exact"):
        Trainer(model, guide, TrainConfig(objective="iwae", num_particles=2), progress=False)
