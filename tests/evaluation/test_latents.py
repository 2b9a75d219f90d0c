"""log p(x, z) with the clusters summed out, at chosen latents, against hand-written cluster loops."""

import pyro
import pyro.distributions as dist
import pytest
import torch
from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, decoder_log_prob, gmvae_cluster_log_joint,
                     guide_normal, normal_log_prob, vade_cluster_log_joint)

from pyro_gmvae import ConfigError, ModelConfig, build
from pyro_gmvae.evaluation.latents import LatentSpace, log_joint, log_joint_and_grad, simulate
from pyro_gmvae.models.priors import positive


def hand_written_log_joint(model, x, z, w=None):
    out = decoder_log_prob(model.decoder, z, x)
    if w is None:
        return out + vade_cluster_log_joint(model.prior, z).logsumexp(-1)
    return (out + gmvae_cluster_log_joint(model.prior, z, w).logsumexp(-1)
            + normal_log_prob(w, torch.zeros_like(w), torch.ones_like(w)))


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_log_joint_and_its_gradient_match_a_cluster_loop(float64, name):
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     noise_dim=NOISE_DIM, network="toy"))
    x = torch.rand(BATCH, DATA_DIM)
    space = LatentSpace(guide, x)
    assert set(space.names) == ({"z"} if name == "vade" else {"z", "w"})
    assert space.dim == LATENT_DIM + (NOISE_DIM if name == "gmvae" else 0)
    loc, scale = guide_normal(guide, "z", x)
    values = space.unflatten(space.loc)
    assert torch.allclose(values["z"], loc) and torch.allclose(space.unflatten(space.scale)["z"], scale)

    flat = torch.randn(7, BATCH, space.dim, requires_grad=True)
    got = log_joint(model, x, space, flat)
    parts = space.unflatten(flat)
    expected = hand_written_log_joint(model, x, parts["z"], parts.get("w"))
    assert got.shape == (7, BATCH)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)
    value, grad = log_joint_and_grad(model, x, space, flat)
    (expected_grad,) = torch.autograd.grad(expected.sum(), flat)
    assert torch.allclose(value, expected.detach(), atol=1e-10)
    assert torch.allclose(grad, expected_grad, rtol=1e-10, atol=1e-10)
    # the guide's density at flat values is the guide's own log-prob, site by site
    zloc, zscale = guide_normal(guide, "z", x)
    expected_q = normal_log_prob(parts["z"], zloc, zscale)
    if name == "gmvae":
        expected_q = expected_q + normal_log_prob(parts["w"], *guide_normal(guide, "w", x))
    assert torch.allclose(space.log_q(flat), expected_q, atol=1e-10)


def test_simulate_draws_the_joint(float64):
    """x | z from simulate has the decoder's mean; z's cluster-averaged mean is the prior's."""
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy", likelihood="normal"))
    x, latents = simulate(model, torch.zeros(4000, DATA_DIM))
    assert set(latents) == {"z"} and x.shape == (4000, DATA_DIM)
    z = latents["z"]
    weights = model.prior.logits.softmax(-1)
    assert torch.allclose(z.mean(0), weights @ model.prior.loc, atol=0.1)
    residual = x - model.decoder.net(z)
    assert residual.mean(0).abs().max() < 0.1
    assert torch.allclose(residual.std(0), positive(model.decoder.scale_raw).detach().expand(DATA_DIM), rtol=0.1)


def test_structured_guides_are_refused(float64):
    """A guide whose z depends on its own draw of w has no per-site density given x alone."""
    model, _ = build(ModelConfig(model="gmvae", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                 noise_dim=NOISE_DIM, network="toy"))

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            w = pyro.sample("w", dist.Normal(torch.zeros(x.shape[0], NOISE_DIM), 1.0).to_event(1))
            pyro.sample("z", dist.Normal(w.sum(-1, keepdim=True).expand(-1, LATENT_DIM), 1.0).to_event(1))

    with pytest.raises(ConfigError, match="depends on another site"):
        LatentSpace(guide, torch.rand(BATCH, DATA_DIM))
