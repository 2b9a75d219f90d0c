"""AIS and BDMC against the closed-form evidence of the linear-Gaussian mixture."""

import math

import pytest
import torch
from evaluation.test_marginal import linear_gaussian_model, moment_matched_guide, sample_data

from pyro_gmvae import ConfigError, ModelConfig, build
from pyro_gmvae.evaluation.ais import annealed_importance_sampling, bdmc, sigmoid_schedule
from pyro_gmvae.evaluation.marginal import exact_log_marginal_likelihood


pytestmark = pytest.mark.usefixtures("one_thread")


def stderr_of_mean(values):
    return float(values.std() / math.sqrt(values.shape[0]))


def test_schedule_runs_from_zero_to_one(float64):
    betas = sigmoid_schedule(10)
    assert betas.shape == (11,) and float(betas[0]) == 0.0 and float(betas[-1]) == 1.0
    assert (betas.diff() > 0).all()


@pytest.mark.parametrize("prior", ["mixture", "standard-normal"])
def test_exact_posterior_start_gives_exact_weights(float64, prior):
    """One cluster and the exact posterior as guide: log p(x, z) - log q(z) = log p(x) everywhere, so every
    chain's weight is exact whatever HMC does."""
    model = linear_gaussian_model(1, prior=prior)
    x = sample_data(model, 5)
    result = annealed_importance_sampling(model, moment_matched_guide(model), x, num_steps=4, num_chains=3,
                                          num_leapfrog=2, batch_size=2)
    exact = exact_log_marginal_likelihood(model, x)
    assert result.log_weights.shape == (3, 5)
    assert torch.allclose(result.log_weights, exact.expand(3, 5), rtol=0, atol=1e-8)
    assert torch.allclose(result.log_likelihood, exact, rtol=0, atol=1e-8)
    assert ((result.acceptance > 0) & (result.acceptance <= 1)).all()


def test_ais_converges_to_the_closed_form_as_steps_grow(float64):
    # a guide 0.3 x too narrow over overlapping clusters: importance sampling with it fails PSIS
    model = linear_gaussian_model(4, noise_scale=0.5, spread=1.0)
    guide = moment_matched_guide(model, inflate=0.3)
    x = sample_data(model, 10)
    exact = exact_log_marginal_likelihood(model, x)
    few = annealed_importance_sampling(model, guide, x, num_steps=5, num_chains=16, num_leapfrog=2)
    many = annealed_importance_sampling(model, guide, x, num_steps=100, num_chains=16, num_leapfrog=2)
    err_few, err_many = few.log_likelihood - exact, many.log_likelihood - exact
    assert float(err_few.mean()) < -0.3  # far below: a stochastic lower bound with too few steps
    assert float(err_many.abs().mean()) < 0.15 < float(err_few.abs().mean())
    assert abs(float(err_many.mean())) < 4 * stderr_of_mean(err_many) + 0.02


@pytest.mark.slow
def test_ais_is_tight_at_many_steps(float64):
    # strongly overlapping clusters: a posterior HMC can cross (where it cannot, between well-separated
    # modes, the weights keep a variance that more steps do not remove: 0.04 nats mean error at 1000 steps)
    model = linear_gaussian_model(4, noise_scale=0.7, spread=0.6)
    guide = moment_matched_guide(model, inflate=0.5)
    x = sample_data(model, 10)
    exact = exact_log_marginal_likelihood(model, x)
    result = annealed_importance_sampling(model, guide, x, num_steps=1000, num_chains=32, num_leapfrog=3)
    err = result.log_likelihood - exact
    assert float(err.abs().mean()) < 0.02
    assert float(err.abs().max()) < 0.05


def test_bdmc_brackets_the_closed_form_and_its_gap_shrinks(float64):
    model = linear_gaussian_model(4, noise_scale=0.5, spread=1.0)
    guide = moment_matched_guide(model, inflate=0.3)
    like = torch.zeros(1, 6)
    gaps = []
    for num_steps in (5, 50):
        result = bdmc(model, guide, 30, like, num_steps=num_steps, num_chains=16, num_leapfrog=2)
        exact = exact_log_marginal_likelihood(model, result.x)
        below, above = exact - result.lower.log_likelihood, result.upper.log_likelihood - exact
        # stochastic bounds: each holds in expectation, so on average over the simulated points
        assert float(below.mean()) > -3 * stderr_of_mean(below)
        assert float(above.mean()) > -3 * stderr_of_mean(above)
        gaps.append(result.summary()["gap"])
    assert gaps[0] > 1.0 and gaps[1] < 0.1


def test_gmvae_moves_both_continuous_sites(float64):
    """GMVAE (sites w and z): every chain moves both; the estimate is finite and the shapes right."""
    model, guide = build(ModelConfig(model="gmvae", data_dim=6, num_clusters=4, latent_dim=5, noise_dim=2,
                                     network="toy"))
    x = torch.rand(3, 6)
    result = annealed_importance_sampling(model, guide, x, num_steps=3, num_chains=2, num_leapfrog=1)
    assert result.log_likelihood.shape == (3,) and torch.isfinite(result.log_likelihood).all()
    both = bdmc(model, guide, 3, x, num_steps=3, num_chains=2, num_leapfrog=1)
    assert both.gap.shape == (3,) and set(both.summary()) >= {"lower", "upper", "gap"}


@pytest.mark.parametrize("kwargs,match", [
    ({"num_steps": 0}, "num_steps must be > 0"),
    ({"num_chains": 1.5}, "num_chains must be an integer"),
    ({"step_size": 0.0}, "step_size must be positive"),
    ({"target_accept": 1.0}, "target_accept must lie in"),
])
def test_bad_arguments_are_refused_before_any_work(kwargs, match):
    model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
    with pytest.raises(ConfigError, match=match):
        annealed_importance_sampling(model, guide, torch.rand(2, 6), **kwargs)
    with pytest.raises(ConfigError, match=match):
        bdmc(model, guide, 2, torch.rand(2, 6), **kwargs)
