"""Responsibilities by enumeration equal a brute-force Bayes-rule loop over clusters."""

import pytest
import torch

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, gmvae_cluster_log_joint,
                     vade_cluster_log_joint)
from pyro_gmvae import ModelConfig, build, predict, responsibilities


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_responsibilities_match_bayes_rule(float64, name):
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     latent_dim=LATENT_DIM, noise_dim=NOISE_DIM, network="toy"))
    x = torch.rand(BATCH, DATA_DIM)
    means = {k: d.mean for k, d in guide.site_dists(x).items()}
    if name == "vade":
        joint = vade_cluster_log_joint(model.prior, means["z"])
    else:
        joint = gmvae_cluster_log_joint(model.prior, means["z"], means["w"])
    expected = joint.softmax(-1)
    got = responsibilities(model, guide, x, batch_size=2)  # two batches: 2 + 1
    assert got.shape == (BATCH, NUM_CLUSTERS)
    assert torch.allclose(got.sum(-1), torch.ones(BATCH), atol=1e-12)
    assert torch.allclose(got, expected, rtol=1e-9, atol=1e-12)
    assert torch.equal(predict(model, guide, x), expected.argmax(-1))
