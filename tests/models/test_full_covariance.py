"""The full-covariance latent mixture (``prior="full-mixture"``): its density, its enumerated ELBO, its closed-form
evidence and its start, each against an independent computation in float64."""

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from torch import nn

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NUM_CLUSTERS, assert_elbo_matches, decoder_log_prob, guide_normal,
                     normal_log_prob)
from pyro_gmvae import ModelConfig, Trainer, TrainConfig, build, from_tensor
from pyro_gmvae.evaluation.marginal import exact_log_marginal_likelihood
from pyro_gmvae.inference.pretrain import encode_mean, initialise_prior
from pyro_gmvae.models.decoders import Decoder
from pyro_gmvae.models.model import ClusterModel
from pyro_gmvae.models.priors import FullCovarianceMixturePrior, MixturePrior, inverse_softplus


def random_full_prior(latent_dim, num_clusters, seed=0):
    g = torch.Generator().manual_seed(seed)
    prior = FullCovarianceMixturePrior(latent_dim, num_clusters)
    with torch.no_grad():
        prior.logits.copy_(torch.randn(num_clusters, generator=g))
        prior.loc.copy_(2 * torch.randn(num_clusters, latent_dim, generator=g))
        prior.tril_raw.copy_(0.6 * torch.randn(num_clusters, latent_dim, latent_dim, generator=g))
    return prior


def covariances(prior):
    tril = prior.scale_tril.detach().numpy()
    return tril @ np.swapaxes(tril, -1, -2)


def test_density_is_scipys_multivariate_normal(float64):
    prior = random_full_prior(3, 4)
    z = torch.randn(6, 1, 3)
    got = prior.z_dist(torch.arange(4)).log_prob(z).detach().numpy()
    covs, loc = covariances(prior), prior.loc.detach().numpy()
    expected = np.stack([multivariate_normal(loc[k], covs[k]).logpdf(z[:, 0].numpy()) for k in range(4)], 1)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)
    assert np.all(np.linalg.eigvalsh(covs) > 0)


def mvn_log_prob(z, loc, tril):
    """log N(z; loc, L L^T) by hand: a triangular solve and the log-determinant."""
    diff = torch.linalg.solve_triangular(tril, (z - loc)[..., None], upper=False)[..., 0]
    return -0.5 * (diff ** 2).sum(-1) - tril.diagonal(dim1=-2, dim2=-1).log().sum(-1) \
        - 0.5 * z.shape[-1] * math.log(2 * math.pi)


def test_enumerated_elbo_and_gradients_equal_a_loop_over_clusters(float64):
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy", prior="full-mixture"))
    with torch.no_grad():
        model.prior.tril_raw.copy_(0.5 * torch.randn_like(model.prior.tril_raw))
    x = torch.rand(BATCH, DATA_DIM)

    def hand_written(tr):
        z = tr.nodes["z"]["value"]
        prior = model.prior
        log_pi = torch.log_softmax(prior.logits, -1)
        joint = torch.stack([log_pi[k] + mvn_log_prob(z, prior.loc[k], prior.scale_tril[k])
                             for k in range(NUM_CLUSTERS)], -1)
        loc, scale = guide_normal(guide, "z", x)
        return -(decoder_log_prob(model.decoder, z, x) - normal_log_prob(z, loc, scale) + joint.logsumexp(-1)).sum()

    assert_elbo_matches(model, guide, x, hand_written)


def test_closed_form_evidence_matches_a_quadrature_in_two_dimensions(float64):
    """log p(x) of the full-covariance mixture with a linear decoder, against a grid sum of p(x | z) p(z)."""
    prior = random_full_prior(2, 3, seed=1)
    decoder = Decoder(nn.Linear(2, 3), 3, likelihood="normal")
    with torch.no_grad():
        decoder.scale_raw.copy_(inverse_softplus(torch.full((3,), 0.8)))
    model = ClusterModel(prior, decoder)
    x = torch.tensor([[0.1, -0.3, 0.5], [1.0, 2.0, -1.0]])
    axis = torch.linspace(-14, 14, 801)
    z = torch.cartesian_prod(axis, axis)  # (G, 2)
    with torch.no_grad():
        log_prior = prior.z_dist(torch.arange(3)[:, None]).log_prob(z).T + prior.logits.log_softmax(-1)  # (G, K)
        log_joint = log_prior.logsumexp(-1)[:, None] + decoder.x_dist(z).log_prob(x[:, None, :]).T
    expected = (log_joint + 2 * math.log(float(axis[1] - axis[0]))).logsumexp(0)
    assert torch.allclose(exact_log_marginal_likelihood(model, x), expected, rtol=0, atol=1e-6)


def test_with_diagonal_components_it_is_the_papers_mixture(float64):
    """Diagonal Cholesky factors: the same log p(x) as VaDE's diagonal prior with the same parameters."""
    diag = MixturePrior(LATENT_DIM, NUM_CLUSTERS)
    full = FullCovarianceMixturePrior(LATENT_DIM, NUM_CLUSTERS)
    with torch.no_grad():
        diag.logits.copy_(torch.randn(NUM_CLUSTERS))
        diag.loc.copy_(torch.randn(NUM_CLUSTERS, LATENT_DIM))
        diag.scale_raw.copy_(torch.randn(NUM_CLUSTERS, LATENT_DIM))
    full.init_from_gmm(diag.logits.softmax(-1).detach(), diag.loc.detach(), diag.scale.detach())
    decoder = Decoder(nn.Linear(LATENT_DIM, DATA_DIM), DATA_DIM, likelihood="normal")
    x = torch.randn(BATCH, DATA_DIM)
    assert torch.allclose(exact_log_marginal_likelihood(ClusterModel(full, decoder), x),
                          exact_log_marginal_likelihood(ClusterModel(diag, decoder), x), rtol=0, atol=1e-10)


def test_the_start_copies_each_labelled_clusters_full_covariance(float64):
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     network="toy", prior="full-mixture"))
    x = torch.rand(200, DATA_DIM)
    labels, report = initialise_prior(model.prior, guide, x, strategy="gmm", seed=0)
    codes, lab = encode_mean(guide, x).detach().numpy(), labels.numpy()
    for k in range(NUM_CLUSTERS):
        pts = codes[lab == k]
        np.testing.assert_allclose(covariances(model.prior)[k], np.cov(pts.T, bias=True), rtol=1e-4, atol=1e-9)
        np.testing.assert_allclose(model.prior.loc[k].detach().numpy(), pts.mean(0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(model.prior.cluster_dist().probs.detach().numpy(),
                               np.bincount(lab, minlength=NUM_CLUSTERS) / len(lab), rtol=0, atol=1e-12)
    assert report["init_mean_component_scale"] > 0


def test_a_run_with_it_pretrains_warms_up_and_trains():
    torch.manual_seed(0)
    centres = 3 * torch.randn(3, DATA_DIM)
    x = torch.sigmoid(centres[torch.arange(150) % 3] + 0.3 * torch.randn(150, DATA_DIM))
    model, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=3, latent_dim=2, network="toy",
                                     prior="full-mixture"))
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=50, pretrain_epochs=2, init="gmm",
                                                init_warmup_epochs=1), progress=False)
    history = trainer.fit(from_tensor(x))
    assert len(history) == 2 and all(math.isfinite(row["elbo"]) for row in history)
    assert trainer.pretrain_report["init"] == "gmm" and "warmup_loss" in trainer.pretrain_report


@pytest.mark.parametrize("shape", [(NUM_CLUSTERS, LATENT_DIM), (NUM_CLUSTERS, LATENT_DIM, LATENT_DIM)])
def test_init_from_gmm_takes_standard_deviations_or_cholesky_factors(float64, shape):
    prior = FullCovarianceMixturePrior(LATENT_DIM, NUM_CLUSTERS)
    scales = torch.rand(*shape) + 0.5
    if len(shape) == 3:
        scales = scales.tril()
    prior.init_from_gmm(torch.full((NUM_CLUSTERS,), 1.0 / NUM_CLUSTERS), torch.zeros(NUM_CLUSTERS, LATENT_DIM),
                        scales)
    expected = torch.diag_embed(scales) if len(shape) == 2 else scales
    assert torch.allclose(prior.scale_tril, expected, rtol=0, atol=1e-12)
