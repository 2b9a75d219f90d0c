"""The likelihoods: the continuous Bernoulli is a density on [0, 1], the Bernoulli of gray levels is not."""

import numpy as np
import pytest
import torch
from helpers import continuous_bernoulli_log_prob

from pyro_gmvae import ModelConfig, build
from pyro_gmvae.models.decoders import Decoder, is_normalised
from pyro_gmvae.registry import LIKELIHOODS

# Gauss-Legendre nodes on [0, 1]: exact for polynomials of degree < 400; the densities are smooth
NODES, WEIGHTS = (torch.as_tensor(a) for a in np.polynomial.legendre.leggauss(200))
NODES, WEIGHTS = (NODES + 1) / 2, WEIGHTS / 2


def test_every_likelihood_is_registered():
    assert {"bernoulli", "continuous-bernoulli", "normal"} <= set(LIKELIHOODS)


# logits near 0 take torch's Taylor branch of the normaliser; large ones are nearly a point mass at an end
@pytest.mark.parametrize("logit", [-8.0, -1.3, -1e-3, 0.0, 2e-3, 0.7, 5.0])
def test_continuous_bernoulli_integrates_to_one(float64, logit):
    decoder = Decoder(torch.nn.Identity(), 1, "continuous-bernoulli")
    density = decoder.x_dist(torch.full((NODES.shape[0], 1), logit)).log_prob(NODES[:, None]).exp()
    assert float((WEIGHTS * density).sum()) == pytest.approx(1.0, abs=1e-9)


def test_continuous_bernoulli_of_a_decoder_matches_the_formula(float64):
    decoder = Decoder(torch.nn.Linear(2, 3), 3, "continuous-bernoulli")
    z, x = torch.randn(4, 2), torch.rand(4, 3)
    expected = continuous_bernoulli_log_prob(x, decoder.net(z))
    assert torch.allclose(decoder.x_dist(z).log_prob(x), expected, atol=1e-10)


def test_the_joint_density_of_a_two_pixel_image_is_normalised(float64):
    decoder = Decoder(torch.nn.Linear(1, 2), 2, "continuous-bernoulli")
    with torch.no_grad():
        decoder.net.weight.copy_(torch.tensor([[2.5], [-1.0]]))
        decoder.net.bias.copy_(torch.tensor([0.3, -0.2]))
    grid = torch.cartesian_prod(NODES, NODES)
    weights = torch.cartesian_prod(WEIGHTS, WEIGHTS).prod(-1)
    with torch.no_grad():
        density = decoder.x_dist(torch.ones(grid.shape[0], 1)).log_prob(grid).exp()
    assert float((weights * density).sum()) == pytest.approx(1.0, abs=1e-9)


def test_the_bernoulli_of_gray_levels_is_not_normalised(float64):
    """The Bernoulli 'density' of gray levels integrates to less than one: not a probability of the data."""
    decoder = Decoder(torch.nn.Identity(), 1, "bernoulli")
    density = decoder.x_dist(torch.full((NODES.shape[0], 1), 0.0)).log_prob(NODES[:, None]).exp()
    assert float((WEIGHTS * density).sum()) < 0.6
    gray, binary = torch.tensor([[0.0, 0.4, 1.0]]), torch.tensor([[0.0, 1.0, 1.0]])
    assert not is_normalised("bernoulli", gray) and is_normalised("bernoulli", binary)
    assert is_normalised("continuous-bernoulli", gray) and is_normalised("normal", gray)


def test_a_model_with_the_continuous_bernoulli_trains_on_gray_levels():
    from pyro_gmvae import TrainConfig, Trainer, from_tensor
    from pyro_gmvae.errors import DataError

    model, guide = build(ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy",
                                     likelihood="continuous-bernoulli"))
    history = Trainer(model, guide, TrainConfig(epochs=2, batch_size=20, pretrain_epochs=1),
                      progress=False).fit(from_tensor(torch.rand(40, 6)))
    assert all(np.isfinite(row["elbo"]) for row in history)
    with pytest.raises(DataError, match=r"outside \[0, 1\].*continuous-bernoulli"):
        Trainer(model, guide, TrainConfig(epochs=1), progress=False).fit(from_tensor(torch.rand(40, 6) * 2))
