"""The start of a run (inference/pretrain.py): recipes, initialisation strategies, the q(z|x) scale and
the warm-up, each against an independent computation."""

import copy

import numpy as np
import pyro
import pytest
import torch
from helpers import (BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS, decoder_log_prob, guide_normal,
                     normal_log_prob)
from pyro import poutine

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor, make_elbo
from pyro_gmvae.evaluation.metrics import clustering_scores
from pyro_gmvae.inference.pretrain import (INIT_STRATEGIES, PRETRAIN_RECIPES, _moments, init_guide_scale,
                                           initialise_prior, pretrain_autoencoder, register_init, warm_up,
                                           warm_up_loss)
from pyro_gmvae.models.priors import positive
from pyro_gmvae.sites import CLUSTER, LATENT


def blobs(num_per_cluster=60, num_clusters=NUM_CLUSTERS, dim=DATA_DIM, spread=6.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_clusters, dim, generator=g) * spread
    y = torch.arange(num_clusters).repeat_interleave(num_per_cluster)
    return centers[y] + torch.randn(y.shape[0], dim, generator=g), y


def vade(**kw):
    config = dict(model="vade", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM, network="toy",
                  likelihood="normal")
    return build(ModelConfig(**{**config, **kw}))


def test_moments_are_each_clusters_share_mean_and_std():
    rng = np.random.default_rng(0)
    codes, labels = rng.normal(size=(40, 3)), np.repeat(np.arange(4), 10)
    weights, means, scales = _moments(codes, labels, 4)
    for k in range(4):
        member = codes[labels == k]
        assert weights[k] == pytest.approx(len(member) / 40, abs=0)
        np.testing.assert_allclose(means[k], member.mean(0), rtol=1e-12)
        np.testing.assert_allclose(scales[k], member.std(0), rtol=1e-12)


@pytest.mark.parametrize("strategy", sorted(INIT_STRATEGIES))
def test_init_strategies_find_separated_clusters(strategy):
    codes, y = blobs(dim=LATENT_DIM)
    codes = codes.double().numpy()
    inputs = {"inputs": codes} if strategy == "umap-inputs" else {}  # the data clustered as the codes are
    labels, weights, means, scales, _ = INIT_STRATEGIES[strategy](codes, NUM_CLUSTERS, 0, **inputs)
    assert clustering_scores(y.numpy(), labels)["ari"] == pytest.approx(1.0)
    expected = _moments(codes, labels, NUM_CLUSTERS)  # separated clusters: every strategy gives their moments
    for got, want in zip((weights, means, scales), expected):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_initialise_prior_copies_the_strategys_mixture(float64):
    model, guide = vade()
    x = torch.rand(30, DATA_DIM)
    codes_seen = []

    def fixed(codes, k, seed):
        codes_seen.append(codes)
        labels = np.arange(codes.shape[0]) % k
        return labels, np.arange(1, k + 1) / 10, np.ones((k, LATENT_DIM)) * 3, np.full((k, LATENT_DIM), 0.5), {}

    register_init("fixed-for-test", fixed)
    try:
        labels, report = initialise_prior(model.prior, guide, x, strategy="fixed-for-test", seed=0)
    finally:
        INIT_STRATEGIES.pop("fixed-for-test")
    np.testing.assert_allclose(codes_seen[0], guide.site_dists(x)[LATENT].mean.detach().numpy(), rtol=1e-12)
    assert torch.equal(labels, torch.arange(30) % NUM_CLUSTERS)
    assert torch.allclose(model.prior.cluster_dist().probs, torch.arange(1., 5.) / 10, rtol=1e-12)
    assert torch.allclose(model.prior.loc, torch.full((NUM_CLUSTERS, LATENT_DIM), 3.0))
    assert torch.allclose(model.prior.scale, torch.full((NUM_CLUSTERS, LATENT_DIM), 0.5), rtol=1e-12)
    assert report["init"] == "fixed-for-test"


def test_a_strategy_that_names_inputs_gets_the_data_and_umap_inputs_clusters_them():
    """``umap-inputs`` labels the data's own clusters even where the codes carry none (an untrained encoder
    of blobs in data space, its codes then shuffled), and takes each cluster's moments from the codes."""
    model, guide = vade()
    x, y = blobs()
    seen = []

    def spy(codes, k, seed, *, inputs):
        seen.append(inputs)
        return INIT_STRATEGIES["gmm"](codes, k, seed)

    register_init("spy-for-test", spy)
    try:
        initialise_prior(model.prior, guide, x, strategy="spy-for-test", seed=0)
    finally:
        INIT_STRATEGIES.pop("spy-for-test")
    np.testing.assert_array_equal(seen[0], x.double().numpy())
    with pytest.raises(ValueError, match="the start 'gmm' takes no n_epochs"):  # refused before anything is fitted
        initialise_prior(model.prior, guide, x, strategy="gmm", seed=0, n_epochs=5)

    codes = guide.site_dists(x)[LATENT].mean.detach().double().numpy()
    shuffled = codes[np.random.default_rng(0).permutation(len(codes))]
    labels, weights, means, scales, _ = INIT_STRATEGIES["umap-inputs"](shuffled, NUM_CLUSTERS, 0,
                                                                      inputs=x.double().numpy())
    assert clustering_scores(y.numpy(), labels)["ari"] == pytest.approx(1.0)
    for got, want in zip((weights, means, scales), _moments(shuffled, labels, NUM_CLUSTERS)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_gmvae_prior_starts_at_the_mixture_for_every_w(float64):
    model, _ = build(ModelConfig(model="gmvae", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                 noise_dim=NOISE_DIM, network="toy"))
    means = torch.randn(NUM_CLUSTERS, LATENT_DIM)
    scales = torch.rand(NUM_CLUSTERS, LATENT_DIM) + 0.1
    model.prior.init_from_gmm(np.full(NUM_CLUSTERS, 0.25), means.numpy(), scales.numpy())
    loc, scale = model.prior.components(torch.randn(BATCH, NOISE_DIM))
    assert torch.allclose(loc, means.expand(BATCH, -1, -1), rtol=1e-12)
    assert torch.allclose(scale, scales.expand(BATCH, -1, -1), rtol=1e-9)
    assert torch.equal(model.prior.cluster_dist().probs, torch.full((NUM_CLUSTERS,), 1 / NUM_CLUSTERS))
    with pytest.raises(ValueError, match="shape"):
        model.prior.init_from_gmm(None, means[:2].numpy(), scales.numpy())


def test_warm_up_optimises_the_elbo_with_the_cluster_observed(float64):
    """The warm-up's objective, by hand: log p(x|z) + log pi_c + log N(z; loc_c, scale_c) - log q(z|x)
    at the given c, from the same guide noise."""
    model, guide = vade()
    x = torch.rand(BATCH, DATA_DIM)
    c = torch.tensor([2, 0, 3])
    pyro.set_rng_seed(1)
    loss = make_elbo().differentiable_loss(poutine.condition(model, data={CLUSTER: c}), guide, x)
    pyro.set_rng_seed(1)
    z = poutine.trace(guide).get_trace(x).nodes[LATENT]["value"]
    loc, scale = guide_normal(guide, LATENT, x)
    prior = model.prior
    log_pi = torch.log_softmax(prior.logits, -1)
    expected = -(decoder_log_prob(model.decoder, z, x) + log_pi[c]
                 + normal_log_prob(z, prior.loc[c], positive(prior.scale_raw)[c])
                 - normal_log_prob(z, loc, scale)).sum()
    assert torch.allclose(loss, expected, rtol=1e-10)
    # and the warm-up decreases it
    x, y = blobs(num_per_cluster=20)
    losses = warm_up(model, guide, x, y, epochs=15, batch_size=20, lr=1e-2, seed=0)
    assert losses[-1] < losses[0]
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.parametrize("strategy", ["amortized", "score-function", "relaxed"])
def test_a_guided_warm_up_runs_q_z_given_x_and_the_observed_cluster(float64, strategy):
    """With a q(c | x) guide the warm-up reads q(z | x, c) at the observed c, reparameterised: its loss and
    gradients equal the hand-written ELBO with z = loc_c + scale_c * eps (the same eps)."""
    model, guide = vade(cluster_inference=strategy)
    with torch.no_grad():
        guide.cluster_embedding.normal_()  # q(z | x, c) differs between clusters
    x = torch.rand(BATCH, DATA_DIM)
    c = torch.tensor([2, 0, 3])
    pyro.set_rng_seed(1)
    loss = warm_up_loss(model, guide, x, c)
    got = torch.autograd.grad(loss, list(guide.heads.parameters()))
    pyro.set_rng_seed(1)
    drawn = poutine.trace(guide.given_cluster).get_trace(x, c).nodes[LATENT]["value"]
    head, features = guide.heads[LATENT], guide.encoder(x) + guide.cluster_embedding[c]
    loc, scale = head.loc(features), positive(head.scale_raw(features))
    z = loc + scale * ((drawn - loc) / scale).detach()  # the same noise, reparameterised by hand
    prior = model.prior
    expected = -(decoder_log_prob(model.decoder, z, x) + torch.log_softmax(prior.logits, -1)[c]
                 + normal_log_prob(z, prior.loc[c], positive(prior.scale_raw)[c])
                 - normal_log_prob(z, loc, scale)).sum()
    assert torch.allclose(loss, expected, rtol=1e-10)
    for g, e in zip(got, torch.autograd.grad(expected, list(guide.heads.parameters()))):
        assert torch.allclose(g, e, rtol=1e-8, atol=1e-12)


def _log_posterior_by_a_loop(model, guide_trace, x, labels, num_super_clusters=None):
    """log p(c = labels | the guide's draw), by a loop over every value of the discrete sites (the cluster and a
    hierarchy's super-cluster), each observed, with the guide's draw replayed: no enumeration involved."""
    supers = [None] if num_super_clusters is None else range(num_super_clusters)
    joint = torch.full((x.shape[0], NUM_CLUSTERS, len(supers)), float("nan"), dtype=x.dtype)
    for c in range(NUM_CLUSTERS):
        for j, s in enumerate(supers):
            data = {CLUSTER: torch.full((x.shape[0],), c)}
            if s is not None:
                data["super_cluster"] = torch.full((x.shape[0],), s)
            trace = poutine.trace(poutine.replay(poutine.condition(model, data=data), trace=guide_trace)).get_trace(x)
            trace.compute_log_prob()
            joint[:, c, j] = sum(site["log_prob"] for site in trace.nodes.values()
                                 if site["type"] == "sample" and not site["is_observed"] or site["name"] in data
                                 or site["name"] == "x")
    log_joint = joint.logsumexp(-1)
    return log_joint.log_softmax(-1)[torch.arange(x.shape[0]), labels]


@pytest.mark.parametrize("kind", ["vade", "gmvae", "hierarchical"])
def test_the_warm_ups_label_weight_is_the_cross_entropy_of_the_cluster_posterior(float64, kind):
    """warm_up_loss(lambda) - warm_up_loss(0), on the same guide draw, is -lambda sum log p(c = label | latents):
    checked, value and gradients, against a loop over the clusters (and a hierarchy's super-clusters)."""
    extra = {"num_super_clusters": 2} if kind == "hierarchical" else {}
    model, guide = vade(model=kind, **extra)
    x, c = torch.rand(5, DATA_DIM), torch.tensor([0, 1, 2, 3, 1])
    params = [p for m in (model, guide) for p in m.parameters()]
    pyro.set_rng_seed(3)
    plain = warm_up_loss(model, guide, x, c)
    pyro.set_rng_seed(3)
    weighted = warm_up_loss(model, guide, x, c, label_weight=2.5)
    pyro.set_rng_seed(3)
    draw = poutine.trace(guide).get_trace(x)
    cross_entropy = -_log_posterior_by_a_loop(model, draw, x, c, extra.get("num_super_clusters")).sum()
    assert cross_entropy > 0
    assert torch.allclose(weighted - plain, 2.5 * cross_entropy, rtol=1e-10)
    got = torch.autograd.grad(weighted - plain, params, allow_unused=True)
    expected = torch.autograd.grad(2.5 * cross_entropy, params, allow_unused=True)
    for g, e in zip(got, expected):
        if e is None:  # a parameter the cross-entropy does not reach: the decoder's terms cancel
            assert g is None or torch.count_nonzero(g) == 0
        else:  # the decoder's cancelled terms leave round-off of ~1e-12
            assert torch.allclose(g, e, rtol=1e-8, atol=1e-10)


def test_vades_label_weight_is_the_mixtures_own_classifier(float64):
    """For VaDE the cross-entropy is, by hand, -log softmax_c(log pi_c + log N(z; mu_c, sigma_c)) at the draw."""
    model, guide = vade()
    x, c = torch.rand(BATCH, DATA_DIM), torch.tensor([2, 0, 3])
    pyro.set_rng_seed(1)
    plain = warm_up_loss(model, guide, x, c)
    pyro.set_rng_seed(1)
    weighted = warm_up_loss(model, guide, x, c, label_weight=1.0)
    pyro.set_rng_seed(1)
    z = poutine.trace(guide).get_trace(x).nodes[LATENT]["value"]
    prior = model.prior
    scores = torch.log_softmax(prior.logits, -1) + torch.stack(
        [normal_log_prob(z, prior.loc[k], positive(prior.scale_raw)[k]) for k in range(NUM_CLUSTERS)], -1)
    expected = -torch.log_softmax(scores, -1)[torch.arange(BATCH), c].sum()
    assert torch.allclose(weighted - plain, expected, rtol=1e-10)


def test_the_label_weight_needs_the_exact_clusters_and_a_valid_value():
    with pytest.raises(ValueError, match="init_warmup_label_weight"):
        TrainConfig(init_warmup_label_weight=-1.0)
    model, guide = vade(cluster_inference="amortized")
    with pytest.raises(ValueError, match=r"label weight \(2.0\).*'amortized'; pass cluster_inference='exact'"):
        Trainer(model, guide, TrainConfig(init_warmup_label_weight=2.0), progress=False)
    with pytest.raises(ValueError, match="needs the exact enumerated clusters"):
        warm_up_loss(model, guide, torch.rand(BATCH, DATA_DIM), torch.tensor([2, 0, 3]), label_weight=1.0)
    model, guide = vade()
    with pytest.raises(ValueError, match=r"one guide draw in both ELBOs: pass an ELBO with num_particles=1 \(got 4\)"):
        warm_up_loss(model, guide, torch.rand(BATCH, DATA_DIM), torch.tensor([2, 0, 3]), make_elbo(num_particles=4),
                     label_weight=1.0)


def test_the_trainer_warms_up_with_the_label_weight():
    x, y = blobs(num_per_cluster=15)
    losses = {}
    for weight in (0.0, 5.0):
        pyro.set_rng_seed(0)
        trainer = Trainer(*vade(), TrainConfig(epochs=1, batch_size=20, pretrain_epochs=2, init="gmm",
                                               init_warmup_epochs=1, init_warmup_label_weight=weight), progress=False)
        losses[weight] = trainer.pretrain(from_tensor(x))["warmup_loss"]
    assert losses[5.0] > losses[0.0]  # the same start, the same draws: the weighted loss adds a cross-entropy


def test_warm_up_keeps_a_hierarchys_super_cluster_enumerated():
    model, guide = build(ModelConfig(model="hierarchical", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     num_super_clusters=2, latent_dim=LATENT_DIM, network="toy",
                                     likelihood="normal"))
    x, y = blobs(num_per_cluster=10)
    losses = warm_up(model, guide, x, y, epochs=2, batch_size=20, lr=1e-3, seed=0)
    assert np.all(np.isfinite(losses))


def test_init_guide_scale_sets_a_constant_scale():
    _, guide = vade()
    assert init_guide_scale(guide, 0.05)
    d = guide.site_dists(torch.rand(BATCH, DATA_DIM))[LATENT]
    assert torch.allclose(d.base_dist.scale, torch.full((BATCH, LATENT_DIM), 0.05), rtol=1e-5)
    _, lowrank = vade(guide="lowrank")
    assert not init_guide_scale(lowrank, 0.05)


@pytest.mark.parametrize("recipe", sorted(PRETRAIN_RECIPES))
def test_pretraining_recipes_lower_their_loss(recipe):
    model, guide = vade()
    x, _ = blobs(num_per_cluster=20)
    losses = pretrain_autoencoder(model, guide, x, epochs=8, batch_size=20, lr=1e-2, seed=0, recipe=recipe)
    assert losses[-1] < losses[0]


def test_unknown_recipe_and_init_are_refused_before_anything_runs():
    with pytest.raises(ValueError, match="pretraining recipe"):
        TrainConfig(pretrain_recipe="sgd")
    with pytest.raises(ValueError, match="initialisation"):
        TrainConfig(init="kmeans++")
    with pytest.raises(ValueError, match="init_warmup_epochs"):
        TrainConfig(init_warmup_epochs=-1)
    with pytest.raises(ValueError, match=r"umap_epochs \(--umap-epochs\) sets UMAP's epochs.*'gmm' takes no n_epochs"):
        TrainConfig(init="gmm", umap_epochs=100)
    with pytest.raises(ValueError, match="umap_epochs"):
        TrainConfig(init="umap", umap_epochs=0)


def test_umap_epochs_reach_umap(monkeypatch):
    """``umap_epochs`` is UMAP's ``n_epochs`` in the run's start, and the pretraining report records it."""
    import umap

    seen = []
    fit_transform = umap.UMAP.fit_transform
    monkeypatch.setattr(umap.UMAP, "fit_transform",
                        lambda self, X: seen.append(self.n_epochs) or fit_transform(self, X))
    x, y = blobs()
    trainer = Trainer(*vade(), TrainConfig(epochs=0, batch_size=60, pretrain_epochs=2, init="umap", umap_epochs=30),
                      progress=False)
    trainer.fit(from_tensor(x, y, likelihood="normal"))
    assert seen == [30] and trainer.pretrain_report["umap_epochs"] == 30


def test_vade_ends_clearly_above_its_initialisation():
    """A seeded small problem (the arcs, 3 pretraining epochs, the paper's GMM start): the moment of the start's
    mixture scores below where the warm-up and a short SVI phase at a low rate take it. Labels score only."""
    from pyro_gmvae import load_dataset

    data = load_dataset("synthetic", num_datapoints=1000, seed=0)
    pyro.set_rng_seed(2)
    model, guide = build(ModelConfig(model="vade", data_dim=2, num_clusters=5, latent_dim=2, network="toy",
                                     likelihood="normal"))
    config = TrainConfig(epochs=5, batch_size=100, lr=1e-4, seed=2, pretrain_epochs=3, init="gmm",
                         init_guide_scale=0.05, init_warmup_epochs=10)
    trainer = Trainer(model, guide, config, progress=False)
    history = trainer.fit(data)
    start = trainer.pretrain_report["init_acc"]
    assert history[-1]["acc"] >= start + 0.02, (start, trainer.pretrain_report["warmup_acc"], history[-1]["acc"])


@pytest.mark.slow
def test_digits_warm_up_lifts_the_manifold_start():
    """The digits default run's start (slow: ~1 min): the moment-matched mixture of the UMAP labels scores below
    the labels; the warm-up lifts it and SVI at the default rate ends above the start."""
    from pyro_gmvae import load_dataset

    data = load_dataset("digits")
    model, guide = build(ModelConfig.for_dataset("digits", data_dim=64, num_clusters=10))
    trainer = Trainer(model, guide, TrainConfig.for_dataset("digits"), progress=False)
    history = trainer.fit(data)
    report = trainer.pretrain_report
    assert report["warmup_acc"] > report["init_acc"] + 0.01
    assert history[-1]["acc"] > report["init_acc"] + 0.01


def test_pretraining_with_a_warm_up_leaves_pyros_param_store_alone():
    x, _ = blobs(num_per_cluster=15)
    before = set(pyro.get_param_store().keys())
    model, guide = vade()
    trainer = Trainer(model, guide, TrainConfig(epochs=1, batch_size=20, pretrain_epochs=2, init_warmup_epochs=1),
                      progress=False)
    trainer.pretrain(from_tensor(x))
    assert set(pyro.get_param_store().keys()) == before


def test_pretraining_is_triggered_once_and_a_pretrained_state_replaces_it():
    """Trainer.pretrain_once is the one trigger: it pretrains before the first epoch only once, and with a
    pretrained state it takes those weights and pretrains nothing."""
    data = from_tensor(torch.rand(40, DATA_DIM))
    config = ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM, network="toy")
    train = TrainConfig(epochs=1, batch_size=20, pretrain_epochs=1, init="gmm", init_warmup_epochs=0)
    trainer = Trainer(*build(config), train, progress=False)
    assert trainer.pretrain_once(data) is True
    report = trainer.pretrain_report
    assert report["pretrain_epochs"] == 1
    assert trainer.pretrain_once(data) is False and trainer.pretrain_report is report
    state = {"model": trainer.model.state_dict(), "guide": trainer.guide.state_dict(), "pretrain_report": report}
    other = Trainer(*build(config), train, progress=False)
    assert other.pretrain_once(data, state, "src") is False
    assert other.pretrain_report == dict(report, pretrained_from="src")
    assert all(torch.equal(a, b) for a, b in zip(other.model.state_dict().values(), state["model"].values()))


def _labelled_start(name):
    """A start whose ``n_neighbors`` picks its labels: 2 gives the blobs' own clusters, 3 a scrambled labelling
    (two starts of different ELBOs)."""
    x, y = blobs()

    def start(codes, k, seed, n_neighbors=2):
        labels = y.numpy() if n_neighbors == 2 else np.random.default_rng(0).permutation(y.numpy())
        return (labels, *_moments(codes, labels, k), {"umap_neighbors": n_neighbors})

    register_init(name, start)
    return from_tensor(x, y, likelihood="normal")


@pytest.mark.parametrize("order", [(3, 2), (2, 3)])
def test_several_umap_neighbourhoods_keep_the_start_of_the_highest_elbo(float64, order):
    """With ``umap_neighbors=(a, b)`` each start is made from the same autoencoder and random state; the one kept
    is that of the higher ELBO (each candidate's ELBO recomputed here), and the run then is the run of that
    candidate alone, to the last parameter."""
    from pyro_gmvae.evaluation.marginal import elbo_per_datapoint
    from pyro_gmvae.inference.training import START_ELBO_SAMPLES

    data = _labelled_start("labelled-for-test")
    try:
        def run(neighbors):
            """Pretrain, then (the ELBO of the start, recomputed here; the start's weights) and a training epoch."""
            pyro.set_rng_seed(0)
            trainer = Trainer(*vade(), TrainConfig(epochs=1, batch_size=60, pretrain_epochs=2, init_warmup_epochs=2,
                                                   init="labelled-for-test", umap_neighbors=neighbors), progress=False)
            trainer.pretrain(data)
            with torch.random.fork_rng(), torch.no_grad():
                torch.manual_seed(0)
                elbo = float(elbo_per_datapoint(trainer.model, trainer.guide, data, START_ELBO_SAMPLES).mean())
            weights = {m: copy.deepcopy(getattr(trainer, m).state_dict()) for m in ("model", "guide")}
            return trainer, elbo, weights, trainer.fit(data)

        both, alone = run(order), {n: run((n,)) for n in order}
        report = both[0].pretrain_report
        assert [c["umap_neighbors"] for c in report["start_candidates"]] == list(order)
        for candidate in report["start_candidates"]:
            assert candidate["elbo"] == pytest.approx(alone[candidate["umap_neighbors"]][1], rel=1e-10)
        elbos = {c["umap_neighbors"]: c["elbo"] for c in report["start_candidates"]}
        chosen = max(elbos, key=elbos.get)
        assert report["umap_neighbors"] == chosen and report["start_elbo"] == elbos[chosen] and elbos[2] != elbos[3]
        assert report["start_labels_acc"] == alone[chosen][0].pretrain_report["start_labels_acc"]
        for module, state in both[2].items():
            for key, value in state.items():
                torch.testing.assert_close(value, alone[chosen][2][module][key], rtol=0, atol=0)
        assert both[3][-1]["elbo"] == alone[chosen][3][-1]["elbo"]  # the random state it left went on too
    finally:
        INIT_STRATEGIES.pop("labelled-for-test")


def test_umap_neighbors_are_refused_before_anything_runs():
    for bad, match in [(dict(init="gmm", umap_neighbors=(10,)), "the start 'gmm' takes no n_neighbors"),
                       (dict(init="umap", umap_neighbors=()), "one or more distinct"),
                       (dict(init="umap", umap_neighbors=(10, 10)), "one or more distinct"),
                       (dict(init="umap", umap_neighbors=(1,)), "at least 2"),
                       (dict(init="umap", umap_neighbors=(2.5,)), "must be an integer")]:
        with pytest.raises(ValueError, match=match):
            TrainConfig(**bad)
    assert TrainConfig(init="umap", umap_neighbors=[10, 20]).umap_neighbors == (10, 20)  # as config.json gives it
    assert TrainConfig.from_dict(TrainConfig(init="umap", umap_neighbors=(10, 20)).to_dict()).umap_neighbors == \
        (10, 20)
