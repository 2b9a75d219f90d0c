"""The enumerated importance-sampling estimate of log p(x) against closed forms and brute-force loops."""

import math

import pyro
import pyro.distributions as dist
import pytest
import torch
from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, decoder_log_prob, gmvae_cluster_log_joint,
                     guide_normal, normal_log_prob, vade_cluster_log_joint)
from pyro import poutine
from pyro.nn import PyroModule
from pyro.ops.indexing import Vindex
from torch import nn

from pyro_gmvae import MODELS, ConfigError, ModelConfig, build
from pyro_gmvae.evaluation.generation import sample_latents_per_cluster, sample_per_cluster
from pyro_gmvae.evaluation.marginal import (elbo_per_datapoint, estimate_marginal_likelihood,
                                            exact_log_marginal_likelihood, importance_log_weights,
                                            log_marginal_likelihood, pareto_khat)
from pyro_gmvae.models import ClusterModel, Decoder, MixturePrior, StandardNormalPrior
from pyro_gmvae.models.priors import ENUM, inverse_softplus, positive


# -- the linear-Gaussian mixture and its exact posterior ----------------------------------------------
def linear_gaussian_model(num_clusters, noise_scale=0.5, spread=1.5, prior="mixture"):
    """A Gaussian mixture prior (or N(0, I)) with a linear decoder ``x | z ~ N(W z + b, noise_scale)``."""
    if prior == "standard-normal":
        p = StandardNormalPrior(LATENT_DIM)
    else:
        p = MixturePrior(LATENT_DIM, num_clusters)
        with torch.no_grad():
            p.logits.copy_(torch.randn(num_clusters))
            p.loc.copy_(spread * torch.randn(num_clusters, LATENT_DIM))
    decoder = Decoder(nn.Linear(LATENT_DIM, DATA_DIM), DATA_DIM, likelihood="normal")
    with torch.no_grad():
        decoder.scale_raw.copy_(inverse_softplus(torch.full((DATA_DIM,), noise_scale)))
    return ClusterModel(p, decoder)


def prior_params(prior):
    if isinstance(prior, StandardNormalPrior):
        return torch.zeros(1), torch.zeros(1, LATENT_DIM), torch.ones(1, LATENT_DIM)
    return prior.logits.log_softmax(-1), prior.loc, prior.scale


def exact_posterior(model, x):
    """``p(z | x)`` is a mixture of Gaussians.

    Returns its weights ``(N, K)``, locs ``(N, K, d)``, covs ``(K, d, d)``."""
    log_pi, loc, scale = prior_params(model.prior)
    w, b = model.decoder.net.weight, model.decoder.net.bias
    noise_var = positive(model.decoder.scale_raw) ** 2
    cov = torch.linalg.inv(torch.diag_embed(scale ** -2) + (w.T / noise_var) @ w)
    rhs = (loc / scale ** 2)[None] + (((x - b) / noise_var) @ w)[:, None, :]
    post_loc = (cov[None] @ rhs[..., None])[..., 0]
    evidence = dist.MultivariateNormal(loc @ w.T + b, (w * scale[:, None, :] ** 2) @ w.T + torch.diag(noise_var))
    return (evidence.log_prob(x[:, None, :]) + log_pi).softmax(-1), post_loc, cov


def moment_matched_guide(model, inflate=1.0):
    """A full-covariance Gaussian guide with the exact posterior's mean and ``inflate`` times its covariance
    (the exact posterior itself when there is one cluster and ``inflate=1``)."""

    def guide(x):
        r, loc, cov = exact_posterior(model, x)
        mean = (r[..., None] * loc).sum(1)
        second = (r[..., None, None] * (cov + loc[..., :, None] * loc[..., None, :])).sum(1)
        with pyro.plate("data", x.shape[0]):
            cov = inflate * (second - mean[..., :, None] * mean[..., None, :])
            pyro.sample("z", dist.MultivariateNormal(mean, cov))

    return guide


def sample_data(model, num):
    with torch.no_grad():
        log_pi, loc, scale = prior_params(model.prior)
        k = dist.Categorical(logits=log_pi).sample((num,))
        z = loc[k] + scale[k] * torch.randn(num, LATENT_DIM)
        return model.decoder.x_dist(z).sample()


def mc_stderr(log_weights):
    """Delta-method standard error of log mean(w) per datapoint, from ``(S, N)`` log-weights."""
    w = (log_weights - log_weights.max(0).values).exp()
    return (w.var(0) / log_weights.shape[0]).sqrt() / w.mean(0)


# -- the closed form -----------------------------------------------------------------------------------
def test_exact_matches_numerical_integration_in_one_dimension(float64):
    """The closed form against a quadrature of p(x | z) p(z) over a 1-D latent."""
    prior = MixturePrior(1, 3)
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.3, -0.5, 0.1]))
        prior.loc.copy_(torch.tensor([[-2.0], [0.5], [3.0]]))
        prior.scale_raw.copy_(inverse_softplus(torch.tensor([[0.5], [1.0], [0.7]])))
    decoder = Decoder(nn.Linear(1, 2), 2, likelihood="normal")
    model = ClusterModel(prior, decoder)
    x = torch.tensor([[0.1, -0.3], [1.0, 2.0]])
    z = torch.linspace(-12, 12, 40001)[:, None]
    log_joint = vade_cluster_log_joint(prior, z).logsumexp(-1)[:, None] + decoder.x_dist(z).log_prob(x[:, None, :]).T
    expected = (log_joint + math.log(float(z[1] - z[0]))).logsumexp(0)
    assert torch.allclose(exact_log_marginal_likelihood(model, x), expected, atol=1e-8)


def test_exact_refuses_models_without_a_closed_form():
    model, _ = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                 network="toy", likelihood="normal"))
    with pytest.raises(ConfigError, match="single torch.nn.Linear"):
        exact_log_marginal_likelihood(model, torch.rand(BATCH, DATA_DIM))
    gmvae, _ = build(ModelConfig(model="gmvae", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM))
    gmvae.decoder = Decoder(nn.Linear(LATENT_DIM, DATA_DIM), DATA_DIM, likelihood="normal")
    with pytest.raises(ConfigError, match="MixturePrior"):
        exact_log_marginal_likelihood(gmvae, torch.rand(BATCH, DATA_DIM))


# -- the estimator against the closed form -----------------------------------------------------------------
@pytest.mark.parametrize("prior", ["mixture", "standard-normal"])
@pytest.mark.parametrize("num_samples,chunk_size", [(1, None), (7, 3)])
def test_exact_posterior_guide_is_exact(float64, prior, num_samples, chunk_size):
    """One cluster and the exact Gaussian posterior as guide: every weight is p(x), at any S and chunking."""
    model = linear_gaussian_model(1, prior=prior)
    x = sample_data(model, BATCH)
    got = log_marginal_likelihood(model, moment_matched_guide(model), x, num_samples, batch_size=2,
                                  chunk_size=chunk_size)
    assert got.shape == (BATCH,)
    assert torch.allclose(got, exact_log_marginal_likelihood(model, x), rtol=0, atol=1e-8)


def test_several_clusters_converge_to_the_closed_form(float64):
    # overlapping clusters share the posteriors, so no Gaussian guide is exact. The guide is
    # over-dispersed (1.5 x the posterior covariance) so that the weights have light tails, as PSIS confirms.
    model = linear_gaussian_model(NUM_CLUSTERS, noise_scale=0.7, spread=0.6)
    guide = moment_matched_guide(model, inflate=1.5)
    x = sample_data(model, 20)
    exact = exact_log_marginal_likelihood(model, x)
    assert exact_posterior(model, x)[0].max(-1).values.min() < 0.9  # several clusters share some posteriors

    log_w = importance_log_weights(model, guide, x, 5000)
    assert pareto_khat(log_w).max() < 0.7
    estimate = log_w.logsumexp(0) - math.log(5000)
    assert (estimate - exact).abs().max() < 0.05
    # never above the closed form by more than the Monte Carlo error (20 datapoints: 4 standard errors each)
    stderr = mc_stderr(log_w)
    assert (estimate - exact <= 4 * stderr).all()
    assert float((estimate - exact).mean()) <= 3 * float(stderr.pow(2).mean().sqrt()) / math.sqrt(x.shape[0])

    # E[log p_S] rises with S: average the S-sample estimates of the 5000 / S disjoint blocks of draws
    def mean_gap(s):
        blocks = log_w.reshape(5000 // s, s, -1)
        return float((blocks.logsumexp(1) - math.log(s) - exact).mean())

    gaps = [mean_gap(s) for s in (1, 10, 100, 1000)]
    assert gaps == sorted(gaps), gaps
    assert gaps[0] < -0.1 and abs(gaps[-1]) < 0.02, gaps


def test_estimate_below_closed_form_and_above_elbo_with_a_poor_guide(float64):
    """A random diagonal amortized guide: ELBO <= estimate (on average) <= closed form + MC error."""
    from pyro_gmvae.inference import AmortizedGuide
    from pyro_gmvae.nn import MLP

    model = linear_gaussian_model(NUM_CLUSTERS)
    guide = AmortizedGuide(MLP(DATA_DIM, (8,)), model.prior.guide_sites)
    x = sample_data(model, 10)
    exact = exact_log_marginal_likelihood(model, x)
    est = estimate_marginal_likelihood(model, guide, x, num_samples=200, batch_size=4)
    log_w = importance_log_weights(model, guide, x, 200)
    assert est.log_likelihood.shape == est.elbo.shape == (10,)
    assert (est.log_likelihood - exact <= 4 * mc_stderr(log_w)).all()
    assert float(est.elbo.mean()) <= float(est.log_likelihood.mean())
    assert (est.elbo <= est.log_likelihood + 1e-12).all()  # Jensen, sample by sample
    elbo = elbo_per_datapoint(model, guide, x, num_samples=50)
    assert float(elbo.mean()) <= float(exact.mean())
    summary = est.summary()
    assert summary["num_samples"] == 200 and summary["num_datapoints"] == 10
    assert summary["khat_max"] is not None and 0 <= summary["khat_share_above_0_7"] <= 1
    assert summary["log_likelihood_stderr"] == pytest.approx(float(est.log_likelihood.std() / math.sqrt(10)))


# -- the estimator against brute-force loops ----------------------------------------------------------------
def test_single_cluster_equals_the_vae_importance_weighted_estimate(float64):
    """VaDE with one N(0, I) cluster is the VAE: same estimate, equal to a hand-written IWAE."""
    config = {"data_dim": DATA_DIM, "latent_dim": LATENT_DIM, "network": "toy", "likelihood": "normal"}
    vae, vae_guide = build(ModelConfig(model="vae", num_clusters=1, **config))
    vade, vade_guide = build(ModelConfig(model="vade", num_clusters=1, **config))
    vade.decoder.load_state_dict(vae.decoder.state_dict())
    vade_guide.load_state_dict(vae_guide.state_dict())
    with torch.no_grad():
        vade.prior.loc.zero_()
        vade.prior.scale_raw.copy_(inverse_softplus(torch.ones(1, LATENT_DIM)))
    x = torch.randn(BATCH, DATA_DIM)
    num_samples = 9

    pyro.set_rng_seed(3)
    got_vae = log_marginal_likelihood(vae, vae_guide, x, num_samples)
    pyro.set_rng_seed(3)
    got_vade = log_marginal_likelihood(vade, vade_guide, x, num_samples)
    pyro.set_rng_seed(3)
    with pyro.plate("samples", num_samples, dim=-2):
        z = poutine.trace(vae_guide).get_trace(x).nodes["z"]["value"]
    loc, scale = guide_normal(vae_guide, "z", x)
    log_w = (decoder_log_prob(vae.decoder, z, x) + normal_log_prob(z, torch.zeros_like(z), torch.ones_like(z))
             - normal_log_prob(z, loc, scale))
    expected = log_w.logsumexp(0) - math.log(num_samples)
    assert torch.allclose(got_vae, expected, rtol=0, atol=1e-10)
    assert torch.allclose(got_vade, expected, rtol=0, atol=1e-10)


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_log_weights_match_hand_written_cluster_loop(float64, name):
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     noise_dim=NOISE_DIM, network="toy"))
    x = torch.rand(BATCH, DATA_DIM)
    num_samples = 7
    pyro.set_rng_seed(4)
    got = importance_log_weights(model, guide, x, num_samples)
    pyro.set_rng_seed(4)
    with pyro.plate("samples", num_samples, dim=-2):
        tr = poutine.trace(guide).get_trace(x)
    z = tr.nodes["z"]["value"]
    loc, scale = guide_normal(guide, "z", x)
    expected = decoder_log_prob(model.decoder, z, x) - normal_log_prob(z, loc, scale)
    if name == "vade":
        expected = expected + vade_cluster_log_joint(model.prior, z).logsumexp(-1)
    else:
        w = tr.nodes["w"]["value"]
        wloc, wscale = guide_normal(guide, "w", x)
        expected = (expected + gmvae_cluster_log_joint(model.prior, z, w).logsumexp(-1)
                    + normal_log_prob(w, torch.zeros_like(w), torch.ones_like(w)) - normal_log_prob(w, wloc, wscale))
    assert got.shape == (num_samples, BATCH)
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)


class TwoLevelModel(PyroModule):
    """super_cluster -> cluster -> z -> x, with z's loc depending on both discrete levels."""

    def __init__(self, num_super=2, num_clusters=3):
        super().__init__()
        self.super_logits = nn.Parameter(torch.randn(num_super))
        self.cluster_logits = nn.Parameter(torch.randn(num_super, num_clusters))
        self.loc = nn.Parameter(torch.randn(num_super, num_clusters, LATENT_DIM))
        self.net = nn.Linear(LATENT_DIM, DATA_DIM)

    def forward(self, x):
        with pyro.plate("data", x.shape[0]):
            s = pyro.sample("super_cluster", dist.Categorical(logits=self.super_logits), infer=ENUM)
            c = pyro.sample("cluster", dist.Categorical(logits=Vindex(self.cluster_logits)[..., s, :]), infer=ENUM)
            z = pyro.sample("z", dist.Normal(Vindex(self.loc)[..., s, c, :], 0.8).to_event(1))
            pyro.sample("x", dist.Normal(self.net(z), 0.7).to_event(1), obs=x)

    def brute_force_log_joint(self, z, x):
        """log sum_{s, c} p(s) p(c | s) p(z | s, c) p(x | z), a loop over both levels."""
        log_ps = self.super_logits.log_softmax(-1)
        log_pc = self.cluster_logits.log_softmax(-1)
        terms = [log_ps[s] + log_pc[s, c] + normal_log_prob(z, self.loc[s, c], torch.full_like(z, 0.8))
                 for s in range(log_pc.shape[0]) for c in range(log_pc.shape[1])]
        return torch.stack(terms, -1).logsumexp(-1) + normal_log_prob(x, self.net(z), torch.full_like(x, 0.7))


def test_nested_enumeration_matches_brute_force(float64):
    model = TwoLevelModel()
    loc_net, scale = nn.Linear(DATA_DIM, LATENT_DIM), torch.rand(LATENT_DIM) + 0.5

    def guide(x):
        with pyro.plate("data", x.shape[0]):
            pyro.sample("z", dist.Normal(loc_net(x), scale).to_event(1))

    x = torch.randn(BATCH, DATA_DIM)
    num_samples = 7
    pyro.set_rng_seed(5)
    got = importance_log_weights(model, guide, x, num_samples)
    pyro.set_rng_seed(5)
    with pyro.plate("samples", num_samples, dim=-2):
        z = poutine.trace(guide).get_trace(x).nodes["z"]["value"]
    expected = model.brute_force_log_joint(z, x) - normal_log_prob(z, loc_net(x), scale.expand_as(z))
    assert torch.allclose(got, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_registered_model(name):
    """Finite, per-datapoint, batched, and the ELBO below the estimate for every registered model."""
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                     noise_dim=NOISE_DIM, network="toy"))
    x = torch.rand(5, DATA_DIM)
    est = estimate_marginal_likelihood(model, guide, x, num_samples=30, batch_size=2, chunk_size=8)
    assert est.log_likelihood.shape == (5,) and torch.isfinite(est.log_likelihood).all()
    assert (est.elbo <= est.log_likelihood + 1e-5).all()
    assert est.khat.shape == (5,)


def test_sites_outside_the_data_plate_are_refused():
    def model(x):
        pyro.sample("z", dist.Normal(0.0, 1.0))
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", dist.Normal(0.0, 1.0).expand([x.shape[1]]).to_event(1), obs=x)

    def guide(x):
        pyro.sample("z", dist.Normal(0.0, 1.0))

    with pytest.raises(ConfigError, match="outside plate"):
        log_marginal_likelihood(model, guide, torch.rand(BATCH, DATA_DIM), 4)


# -- diagnostics -----------------------------------------------------------------------------------------
def test_pareto_khat_flags_heavy_tails():
    light = torch.randn(1000, 3) * 0.1  # log-normal weights with a tiny spread: k-hat well below 0.5
    heavy = torch.distributions.Pareto(1.0, 0.5).sample((1000, 3)).log()  # weights with tail index 0.5: k = 2
    assert (pareto_khat(light) < 0.5).all()
    assert (pareto_khat(heavy) > 0.7).all()
    assert pareto_khat(torch.randn(5, 3)).tolist() == [math.inf] * 3  # too few samples to fit a tail


# -- generation ------------------------------------------------------------------------------------------
def test_samples_per_cluster_follow_each_component(float64):
    model = linear_gaussian_model(NUM_CLUSTERS)
    z = sample_latents_per_cluster(model.prior, 2000)
    assert z.shape == (NUM_CLUSTERS, 2000, LATENT_DIM)
    assert torch.allclose(z.mean(1), model.prior.loc, atol=0.1)
    assert torch.allclose(z.std(1), model.prior.scale.expand(NUM_CLUSTERS, LATENT_DIM), atol=0.1)
    decoded = sample_per_cluster(model, 3)
    assert decoded.shape == (NUM_CLUSTERS, 3, DATA_DIM)


def test_samples_per_cluster_resample_enumerated_parents(float64):
    """With super_cluster -> cluster, z | cluster = k averages over p(super_cluster | cluster = k)."""
    pytest.importorskip("pyro_gmvae.models.hierarchical")
    from pyro_gmvae.models.hierarchical import HierarchicalMixturePrior

    prior = HierarchicalMixturePrior(latent_dim=2, num_clusters=3, num_super_clusters=2)
    z = sample_latents_per_cluster(prior, 500)
    assert z.shape == (3, 500, 2)
    assert torch.allclose(z.mean(1), prior.loc, atol=0.2)
