"""The enumerated TraceEnum_ELBO equals a hand-written loss that loops over clusters."""

import pyro
import pytest
import torch
from pyro import poutine

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, assert_elbo_matches, decoder_log_prob,
                     gmvae_cluster_log_joint, guide_normal, normal_log_prob, vade_cluster_log_joint)
from pyro_gmvae import ModelConfig, build, make_elbo


def hand_written_loss(model, guide, x, z, w=None):
    """-ELBO = -sum_n [log p(x|z) + log sum_k p(k) p(z|k, w) + log p(w) - log q(z|x) - log q(w|x)]."""
    loc, scale = guide_normal(guide, "z", x)
    elbo = decoder_log_prob(model.decoder, z, x) - normal_log_prob(z, loc, scale)
    if w is None:
        joint = vade_cluster_log_joint(model.prior, z)
    else:
        joint = gmvae_cluster_log_joint(model.prior, z, w)
        wloc, wscale = guide_normal(guide, "w", x)
        elbo = elbo + normal_log_prob(w, torch.zeros_like(w), torch.ones_like(w)) - normal_log_prob(w, wloc, wscale)
    return -(elbo + joint.logsumexp(-1)).sum()


@pytest.mark.parametrize("likelihood", ["bernoulli", "continuous-bernoulli", "normal"])
@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_loss_and_gradients_match_hand_written(float64, name, likelihood):
    config = ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                         noise_dim=NOISE_DIM, likelihood=likelihood, network="toy")
    model, guide = build(config)
    x = torch.rand(BATCH, DATA_DIM)

    def expected(tr):
        w = tr.nodes["w"]["value"] if name == "gmvae" else None
        return hand_written_loss(model, guide, x, tr.nodes["z"]["value"], w)

    assert_elbo_matches(model, guide, x, expected)


def test_cluster_is_enumerated_not_sampled(float64):
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy"))
    x = torch.rand(BATCH, DATA_DIM)
    elbo = make_elbo()
    model_trace, _ = next(elbo._get_traces(model, guide, (x,), {}))
    site = model_trace.nodes["cluster"]
    assert site["infer"]["_enumerate_dim"] < 0
    assert site["value"].reshape(-1).tolist() == list(range(NUM_CLUSTERS))


def test_vectorized_particles_average_single_particle_losses(float64):
    """M vectorized particles give the mean of M independent one-particle hand-written losses."""
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy"))
    x = torch.rand(BATCH, DATA_DIM)
    num_particles = 7
    pyro.set_rng_seed(2)
    loss = make_elbo(num_particles).differentiable_loss(model, guide, x)
    pyro.set_rng_seed(2)
    with pyro.plate("num_particles_vectorized", num_particles, dim=-2):
        z = poutine.trace(guide).get_trace(x).nodes["z"]["value"]
    expected = torch.stack([hand_written_loss(model, guide, x, z[m]) for m in range(num_particles)]).mean()
    assert torch.allclose(loss, expected, rtol=1e-6, atol=0)
