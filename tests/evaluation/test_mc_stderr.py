"""The Monte-Carlo standard error of an importance-sampled log p(x): the delta method against the spread of
repeated estimates."""

import math

import pyro
import torch

from pyro_gmvae import ModelConfig, build
from pyro_gmvae.evaluation.marginal import (estimate_marginal_likelihood, log_mean_exp_stderr, mc_stderr_of_mean)


def test_the_delta_method_is_the_relative_error_of_the_mean_weight(float64):
    lw = torch.randn(50, 4)
    w = lw.exp()
    by_hand = (w.var(0, unbiased=False) / 50).sqrt() / w.mean(0)
    assert torch.allclose(log_mean_exp_stderr(lw), by_hand, rtol=1e-10)
    assert math.isclose(mc_stderr_of_mean(torch.tensor([3.0, 4.0])), 2.5, rel_tol=1e-12)


def test_the_stated_error_matches_repeated_estimates(float64):
    """Light-tailed log-normal weights (sigma 0.5), 200 per estimate, 4000 repeats: the stated error is the
    spread of the estimates (the delta method holds here; with heavy tails it underestimates, as k-hat says)."""
    torch.manual_seed(0)
    lw = 0.5 * torch.randn(200, 4000)
    estimates = lw.logsumexp(0) - math.log(200)
    stated = log_mean_exp_stderr(lw)
    assert abs(float(stated.mean() / estimates.std()) - 1) < 0.05


def test_every_estimate_carries_its_error():
    model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy", likelihood="normal"))
    x = torch.randn(8, 6)
    pyro.set_rng_seed(0)
    result = estimate_marginal_likelihood(model, guide, x, num_samples=30)
    assert result.mc_stderr.shape == (8,) and bool((result.mc_stderr > 0).all())
    assert math.isclose(result.summary()["log_likelihood_mc_stderr"], mc_stderr_of_mean(result.mc_stderr))
