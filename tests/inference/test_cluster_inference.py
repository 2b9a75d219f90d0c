"""The four cluster inference strategies: each objective against a hand-written computation in float64 from
the same noise, the score-function gradient against the exact enumerated one, training from the CLI and the
Python API, and what is refused."""

import json
import math

import pyro
import pytest
import torch
from pyro import poutine

from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, decoder_log_prob, gmvae_cluster_log_joint,
                     normal_log_prob, vade_cluster_log_joint)
from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, load_dataset
from pyro_gmvae.cli import main
from pyro_gmvae.errors import ConfigError
from pyro_gmvae.inference import cluster_inference as ci
from pyro_gmvae.inference.cluster_inference import make_cluster_inference
from pyro_gmvae.inference.free_bits import FreeBitsMessenger
from pyro_gmvae.models.priors import positive

STRATEGIES = ["exact", "amortized", "relaxed", "score-function"]


def build_tiny(name, strategy, likelihood="bernoulli", **kw):
    return build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                             noise_dim=NOISE_DIM, likelihood=likelihood, network="toy", cluster_inference=strategy,
                             **kw))


def perturb(*modules):
    """Random values for the zero-initialised q(c | x) head and cluster embedding, so that they matter."""
    with torch.no_grad():
        for m in modules:
            for p in m.parameters():
                p.add_(0.3 * torch.randn_like(p))


def conditional_head(guide, h, weights):
    """loc, scale of q(z | x, c) at features h + weights @ embedding (one-hot weights: one cluster)."""
    head = guide.heads["z"]
    features = h + weights @ guide.cluster_embedding
    return head.loc(features), positive(head.scale_raw(features))


def w_terms(model, guide, h, w):
    """log p(w) - log q(w | x) of GMVAE."""
    head = guide.heads["w"]
    return normal_log_prob(w, torch.zeros_like(w), torch.ones_like(w)) \
        - normal_log_prob(w, head.loc(h), positive(head.scale_raw(h)))


def cluster_joint(model, name, z, w):
    return vade_cluster_log_joint(model.prior, z) if name == "vade" else gmvae_cluster_log_joint(model.prior, z, w)


def params_of(*modules):
    return [p for m in modules for p in m.parameters()]


def assert_same(loss, grads, expected, params):
    expected_grads = torch.autograd.grad(expected, params, allow_unused=True)
    assert torch.allclose(loss, expected, rtol=1e-10, atol=0), (loss, expected)
    for g, e in zip(grads, expected_grads):
        e = torch.zeros_like(g) if e is None else e
        assert torch.allclose(g, e, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_amortized_elbo_is_the_sum_over_q_c_written_by_hand(float64, name):
    """-loss = sum_n sum_c q(c|x_n) [log p(x|z_c) + log p(c) + log p(z_c|c,w) + w terms - log q(c|x) - log q(z_c|x,c)],
    with z_c the guide's draw for cluster c (the same noise)."""
    model, guide = build_tiny(name, "amortized")
    perturb(guide.cluster_logits)
    with torch.no_grad():
        guide.cluster_embedding.normal_()
    strategy = make_cluster_inference(guide)
    params = params_of(model, guide)
    x = torch.rand(BATCH, DATA_DIM)
    pyro.set_rng_seed(1)
    loss = strategy.make_elbo().differentiable_loss(model, strategy.guide, x)
    grads = torch.autograd.grad(loss, params, allow_unused=True)

    pyro.set_rng_seed(1)  # the same noise: the guide enumerates the cluster first at dim -2
    trace = poutine.trace(poutine.enum(strategy.guide, first_available_dim=-2)).get_trace(x)
    z_all = trace.nodes["z"]["value"]  # (K, N, latent)
    w = trace.nodes["w"]["value"] if name == "gmvae" else None
    h = guide.encoder(x)
    log_q_c = torch.log_softmax(guide.cluster_logits(h), -1)
    eye = torch.eye(NUM_CLUSTERS)
    terms = []
    for k in range(NUM_CLUSTERS):
        z = z_all[k]
        loc, scale = conditional_head(guide, h, eye[k])
        term = decoder_log_prob(model.decoder, z, x) + cluster_joint(model, name, z, w)[..., k] - log_q_c[:, k] \
            - normal_log_prob(z, loc, scale)
        if name == "gmvae":
            term = term + w_terms(model, guide, h, w)
        terms.append(term)
    elbo = (log_q_c.exp() * torch.stack(terms, -1)).sum()
    assert_same(loss, grads, -elbo, params)


def log_exp_concrete(s, logits, temperature):
    """log density of ExpConcrete (Maddison et al. 2017, eq. 26) at s = log y, written out."""
    k = logits.shape[-1]
    log_alpha = torch.log_softmax(logits, -1)
    score = log_alpha - temperature * s
    return math.lgamma(k) + (k - 1) * math.log(temperature) + score.sum(-1) - k * score.logsumexp(-1)


@pytest.mark.parametrize("name", ["vade", "gmvae"])
def test_relaxed_loss_is_a_hand_written_gumbel_softmax_loss(float64, name):
    """From the same uniforms and normals drawn by hand: s = log softmax((logits + g) / tau), g = -log(-log u),
    the prior's tables mixed with y = exp(s), ExpConcrete densities in model and guide."""
    model, guide = build_tiny(name, "relaxed")
    perturb(guide.cluster_logits)
    with torch.no_grad():
        guide.cluster_embedding.normal_()
    strategy = make_cluster_inference(guide, TrainConfig(temperature_start=1.0, temperature_end=0.3,
                                                         temperature_decay=0.4))
    strategy.at_epoch(1.5)
    tau = max(0.3, math.exp(-0.4 * 1.5))
    assert strategy.temperature == pytest.approx(tau, rel=1e-12)
    params = params_of(model, guide)
    x = torch.rand(BATCH, DATA_DIM)
    pyro.set_rng_seed(3)
    loss = strategy.make_elbo().differentiable_loss(strategy.model(model), strategy.guide, x)
    grads = torch.autograd.grad(loss, params, allow_unused=True)

    pyro.set_rng_seed(3)  # the guide draws w (GMVAE), then the Gumbel noise, then z's normal noise
    h = guide.encoder(x)
    elbo = 0.0
    w = None
    if name == "gmvae":
        head = guide.heads["w"]
        w = head.loc(h) + positive(head.scale_raw(h)) * torch.empty(BATCH, NOISE_DIM).normal_()
        elbo = w_terms(model, guide, h, w)
    u = torch.rand(BATCH, NUM_CLUSTERS).clamp(torch.finfo(torch.float64).eps, 1 - torch.finfo(torch.float64).eps)
    logits = guide.cluster_logits(h)
    s = torch.log_softmax((logits + -torch.log(-torch.log(u))) / tau, -1)
    y = s.exp()
    loc_q, scale_q = conditional_head(guide, h, y)
    z = loc_q + scale_q * torch.empty(BATCH, LATENT_DIM).normal_()
    prior = model.prior
    if name == "vade":
        prior_logits, loc_p, scale_p = prior.logits, y @ prior.loc, y @ positive(prior.scale_raw)
    else:
        hidden = torch.tanh(prior.hidden[0](w))
        locs = prior.loc_heads(hidden).reshape(BATCH, NUM_CLUSTERS, LATENT_DIM)
        scales = positive(prior.scale_heads(hidden)).reshape(BATCH, NUM_CLUSTERS, LATENT_DIM)
        prior_logits = torch.zeros(NUM_CLUSTERS)
        loc_p, scale_p = (y[..., None] * locs).sum(-2), (y[..., None] * scales).sum(-2)
    elbo = elbo + decoder_log_prob(model.decoder, z, x) + log_exp_concrete(s, prior_logits, tau) \
        + normal_log_prob(z, loc_p, scale_p) - log_exp_concrete(s, logits, tau) - normal_log_prob(z, loc_q, scale_q)
    assert_same(loss, grads, -elbo.sum(), params)


def test_score_function_gradient_is_unbiased(float64):
    """The mean of many score-function gradients (with the learned baseline) equals the gradient of the same
    bound with the cluster summed over exactly, within Monte Carlo error (4 standard errors, fixed seed)."""
    model, guide = build(ModelConfig(data_dim=4, num_clusters=3, latent_dim=2, network="toy", likelihood="normal",
                                     cluster_inference="score-function"))
    perturb(guide.cluster_logits, guide.strategy_modules)
    with torch.no_grad():
        guide.cluster_embedding.normal_()
    x = torch.randn(2, 4)
    params = [p for p in params_of(model, guide)
              if not any(p is q for q in guide.strategy_modules.parameters())]  # the baseline's own: not the ELBO's

    def gradient_draws(strategy, num_batches, num_particles):
        elbo = strategy.make_elbo(num_particles)
        out = []
        for _ in range(num_batches):
            loss = elbo.differentiable_loss(model, strategy.guide, x)
            out.append(torch.cat([(g if g is not None else torch.zeros_like(p)).reshape(-1) for g, p in
                                  zip(torch.autograd.grad(loss, params, allow_unused=True), params)]))
        return torch.stack(out)

    pyro.set_rng_seed(0)
    exact = gradient_draws(ci.Amortized(guide), 10, 4000)  # the sum over c is exact; only z is sampled
    scores = gradient_draws(ci.ScoreFunction(guide), 40, 1000)
    stderr = (exact.var(0) / exact.shape[0] + scores.var(0) / scores.shape[0]).sqrt()
    gap = (scores.mean(0) - exact.mean(0)).abs()
    assert (gap <= 4 * stderr + 1e-8).all(), (gap / stderr).max()
    # the test has power: many components of the gradient are far from zero at this precision
    assert int((exact.mean(0).abs() > 4 * stderr).sum()) > 50


def test_guide_called_alone_is_the_mixture_over_clusters(float64):
    """guide(x) samples the continuous latents from sum_c q(c|x) q(z|x,c): its log-density by hand."""
    model, guide = build_tiny("vade", "amortized")
    perturb(guide.cluster_logits)
    with torch.no_grad():
        guide.cluster_embedding.normal_()
    x = torch.rand(BATCH, DATA_DIM)
    trace = poutine.trace(guide).get_trace(x)
    assert "cluster" not in trace.nodes
    z = trace.nodes["z"]["value"]
    h = guide.encoder(x)
    log_q_c = torch.log_softmax(guide.cluster_logits(h), -1)
    eye = torch.eye(NUM_CLUSTERS)
    by_hand = torch.stack([log_q_c[:, k] + normal_log_prob(z, *conditional_head(guide, h, eye[k]))
                           for k in range(NUM_CLUSTERS)], -1).logsumexp(-1)
    assert torch.allclose(trace.nodes["z"]["fn"].log_prob(z), by_hand, rtol=1e-10)


@pytest.mark.parametrize("strategy", ["amortized", "relaxed", "score-function"])
def test_free_bits_on_a_guided_cluster_constrain_kl_of_q_c(float64, strategy):
    """The handler's KL is the batch mean of KL(q(c|x) || p(c)), in closed form."""
    model, guide = build_tiny("vade", strategy)
    perturb(guide.cluster_logits, model.prior)
    s = make_cluster_inference(guide)
    handler = FreeBitsMessenger(5.0, "cluster")
    x = torch.rand(BATCH, DATA_DIM)
    s.make_elbo(2).differentiable_loss(handler(s.model(model)), s.guide, x)
    log_q = torch.log_softmax(guide.cluster_logits(guide.encoder(x)), -1)
    log_p = torch.log_softmax(model.prior.logits, -1)
    kl = (log_q.exp() * (log_q - log_p)).sum(-1).mean()
    assert torch.allclose(handler.kl, kl, rtol=1e-10)
    assert torch.allclose(handler.correction, BATCH * (5.0 - kl), rtol=1e-10)


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_each_strategy_trains_from_the_cli_and_evaluates(tmp_path, strategy):
    out = tmp_path / strategy
    argv = ["train", "--model", "gmvae", "--dataset", "synthetic", "--num-datapoints", "120", "--epochs", "2",
            "--pretrain-epochs", "1", "--batch-size", "60", "--num-particles", "2", "--free-bits", "0.2",
            "--cluster-inference", strategy, "--out", str(out), "--no-progress"]
    argv += ["--temperature-decay", "1"] if strategy == "relaxed" else []  # the others refuse it (issue 34)
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["cluster_inference"] == strategy
    assert main(["evaluate", str(out), "--num-samples", "4"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert math.isfinite(result["log_likelihood"]) and result["log_likelihood"] >= result["elbo"] - 1e-6


@pytest.mark.parametrize("strategy", STRATEGIES)
@pytest.mark.parametrize("name", ["vade", "hierarchical"])
def test_each_strategy_trains_from_python(name, strategy):
    data = load_dataset("synthetic", num_datapoints=100)
    kw = dict(model=name, data_dim=2, num_clusters=4, latent_dim=2, network="toy", likelihood="normal",
              cluster_inference=strategy)
    if name == "hierarchical" and strategy in ("relaxed", "score-function"):
        with pytest.raises(ConfigError, match="super_cluster.*exact.*amortized"):
            ModelConfig(**kw)
        return
    model, guide = build(ModelConfig(**kw))
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=50, pretrain_epochs=1,
                                                temperature_decay=2.0), progress=False)
    history = trainer.fit(data)
    assert len(history) == 2 and math.isfinite(history[-1]["elbo"]) and "acc" in history[-1]
    if strategy == "relaxed":
        assert trainer.cluster_inference.temperature == pytest.approx(max(0.5, math.exp(-2.0 * 1.5)))


def test_relaxed_resume_is_exact(tmp_path):
    """The temperature is a function of the epochs done, so a resumed relaxed run ends where one run does."""
    tiny = ["--dataset", "synthetic", "--num-datapoints", "100", "--network", "toy", "--num-clusters", "3",
            "--batch-size", "50", "--pretrain-epochs", "1", "--cluster-inference", "relaxed",
            "--temperature-decay", "1", "--no-progress"]
    assert main(["train", *tiny, "--epochs", "3", "--out", str(tmp_path / "one")]) == 0
    assert main(["train", *tiny, "--epochs", "1", "--out", str(tmp_path / "two")]) == 0
    assert main(["train", "--resume", str(tmp_path / "two"), "--epochs", "3", "--no-progress"]) == 0
    from pyro_gmvae.runs import load_checkpoint

    a, b = load_checkpoint(tmp_path / "one"), load_checkpoint(tmp_path / "two")
    for part in ("model", "guide"):
        for key, value in a[part].items():
            assert torch.equal(value, b[part][key]), key


def test_what_cannot_work_is_refused_before_any_work():
    with pytest.raises(ConfigError, match="no 'cluster' site.*exact"):
        ModelConfig(model="vae", cluster_inference="amortized")
    with pytest.raises(ConfigError, match="unknown cluster_inference 'gibbs'"):
        ModelConfig(cluster_inference="gibbs")
    model, guide = build_tiny("vade", "relaxed")
    with pytest.raises(ConfigError, match="--jit.*temperature"):
        Trainer(model, guide, TrainConfig(jit=True), progress=False)
    model, guide = build_tiny("vade", "amortized")
    with pytest.raises(ConfigError, match="free bits on 'z'.*--free-bits-site cluster"):
        Trainer(model, guide, TrainConfig(free_bits=0.5, free_bits_site="z"), progress=False)
    with pytest.raises(ConfigError, match="temperature_end"):
        TrainConfig(temperature_start=0.5, temperature_end=1.0)


def test_a_prior_that_indexes_its_tables_is_refused_for_relaxed():
    import pyro.distributions as dist
    from pyro.nn import PyroModule

    from pyro_gmvae import register_prior
    from pyro_gmvae.models.priors import ENUM, PRIORS

    class IndexingPrior(PyroModule):
        cluster_sites = ("cluster",)

        def __init__(self, latent_dim, num_clusters, **unused):
            super().__init__()
            self.num_clusters, self.guide_sites = num_clusters, {"z": latent_dim}
            self.loc = torch.nn.Parameter(torch.randn(num_clusters, latent_dim))

        def forward(self):
            c = pyro.sample("cluster", dist.Categorical(logits=torch.zeros(self.num_clusters)), infer=ENUM)
            return pyro.sample("z", dist.Normal(self.loc[c], 1.0).to_event(1))

    register_prior("test-indexing", IndexingPrior)
    try:
        build(ModelConfig(prior="test-indexing", data_dim=6, num_clusters=3, latent_dim=2, network="toy",
                          cluster_inference="amortized"))  # an index is fine for the others
        with pytest.raises(ConfigError, match="cannot take a relaxed cluster.*select"):
            build(ModelConfig(prior="test-indexing", data_dim=6, num_clusters=3, latent_dim=2, network="toy",
                              cluster_inference="relaxed"))
    finally:
        PRIORS.pop("test-indexing")


def test_registry_lists_the_four_strategies():
    assert list(ci.CLUSTER_INFERENCE)[:4] == STRATEGIES


@pytest.mark.parametrize("strategy", ["amortized", "relaxed", "score-function"])
def test_each_guided_strategy_trains_under_jit(strategy):
    """JIT-compiled ELBOs (relaxed at a fixed temperature), free bits measured outside the JIT."""
    data = load_dataset("synthetic", num_datapoints=100)
    model, guide = build(ModelConfig(model="gmvae", data_dim=2, num_clusters=3, latent_dim=2, network="toy",
                                     likelihood="normal", cluster_inference=strategy))
    trainer = Trainer(model, guide, TrainConfig(epochs=1, batch_size=50, pretrain_epochs=0, jit=True, free_bits=0.3,
                                                temperature_decay=0.0), progress=False)
    row = trainer.fit(data)[-1]
    assert math.isfinite(row["elbo"]) and row["free_bits_kl"] > 0


def test_free_bits_on_an_amortized_hierarchy_use_the_marginal_cluster_prior(float64):
    """With the super-cluster enumerated in the model, the KL is against p(c) = sum_s p(s) p(c | s)."""
    model, guide = build_tiny("hierarchical", "amortized")
    perturb(guide.cluster_logits, model.prior)
    s = make_cluster_inference(guide)
    handler = FreeBitsMessenger(5.0, "cluster")
    x = torch.rand(BATCH, DATA_DIM)
    s.make_elbo().differentiable_loss(handler(s.model(model)), s.guide, x)
    log_q = torch.log_softmax(guide.cluster_logits(guide.encoder(x)), -1)
    log_p = model.prior.cluster_probs().sum(0).log()
    kl = (log_q.exp() * (log_q - log_p)).sum(-1).mean()
    assert torch.allclose(handler.kl, kl, rtol=1e-10)
