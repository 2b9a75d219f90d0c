"""The hierarchical mixture: exact double enumeration, both levels' posteriors, learning, the CLI."""

import json

import pyro
import pytest
import torch
from helpers import (BATCH, DATA_DIM, LATENT_DIM, NUM_CLUSTERS, assert_elbo_matches, decoder_log_prob, guide_normal,
                     normal_log_prob)
from pyro import poutine

from pyro_gmvae import (
    ModelConfig,
    TrainConfig,
    Trainer,
    build,
    cluster_marginals,
    from_tensor,
    hungarian_accuracy,
    make_elbo,
)
from pyro_gmvae.cli import main
from pyro_gmvae.data.synthetic import make_hierarchy
from pyro_gmvae.errors import ConfigError
from pyro_gmvae.models import MODELS
from pyro_gmvae.models.hierarchical import HierarchicalMixturePrior
from pyro_gmvae.models.priors import positive
from pyro_gmvae.sites import CLUSTER, SUPER_CLUSTER

NUM_SUPER = 3  # with K=4 clusters: the (S, K) table is not square, so swapped levels fail


def hierarchical_config(num_super_clusters=NUM_SUPER, likelihood="bernoulli"):
    return ModelConfig(model="hierarchical", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                       num_super_clusters=num_super_clusters, likelihood=likelihood, network="toy")


def pair_log_joint(prior, z):
    """``log p(s) + log p(k | s) + log N(z; loc_k, scale_k)`` by a loop over all (s, k): ``(..., S, K)``."""
    log_ps = torch.log_softmax(prior.super_logits, -1)
    log_pk = torch.log_softmax(prior.cluster_logits, -1)
    scale = positive(prior.scale_raw)
    rows = []
    for s in range(prior.num_super_clusters):
        rows.append(torch.stack([log_ps[s] + log_pk[s, k] + normal_log_prob(z, prior.loc[k], scale[k])
                                 for k in range(prior.num_clusters)], -1))
    return torch.stack(rows, -2)


def hand_written_loss(model, guide, x, z):
    """-sum_n [log p(x|z) + logsumexp_{s,k} (log p(s) + log p(k|s) + log N(z; loc_k, scale_k)) - log q(z|x)]."""
    loc, scale = guide_normal(guide, "z", x)
    joint = pair_log_joint(model.prior, z)
    return -(decoder_log_prob(model.decoder, z, x) + joint.flatten(-2).logsumexp(-1)
             - normal_log_prob(z, loc, scale)).sum()


def randomise(prior):
    """Move the prior away from its initial values, so that every term matters."""
    with torch.no_grad():
        prior.super_logits.normal_()
        prior.cluster_logits.normal_()
        prior.scale_raw.normal_()


def test_registered_by_name():
    assert MODELS["hierarchical"].prior == "hierarchical-mixture"
    model, guide = build(hierarchical_config())
    assert isinstance(model.prior, HierarchicalMixturePrior)
    assert model.cluster_sites == (SUPER_CLUSTER, CLUSTER)
    assert model.num_clusters == NUM_CLUSTERS and model.prior.num_super_clusters == NUM_SUPER
    assert set(guide.sites) == {"z"}


def test_too_many_super_clusters_is_a_config_error():
    with pytest.raises(ConfigError, match="num_super_clusters"):
        build(hierarchical_config(num_super_clusters=NUM_CLUSTERS + 1))


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_loss_and_gradients_match_brute_force(float64, likelihood):
    model, guide = build(hierarchical_config(likelihood=likelihood))
    randomise(model.prior)
    x = torch.rand(BATCH, DATA_DIM)
    assert_elbo_matches(model, guide, x, lambda tr: hand_written_loss(model, guide, x, tr.nodes["z"]["value"]))


def test_both_levels_enumerated_in_their_own_dims(float64):
    """Each level is enumerated (never sampled) in its own dim; no log-factor exceeds the S x K table."""
    model, guide = build(hierarchical_config())
    x = torch.rand(BATCH, DATA_DIM)
    model_trace, _ = next(make_elbo()._get_traces(model, guide, (x,), {}))
    dims = {name: model_trace.nodes[name]["infer"]["_enumerate_dim"] for name in (SUPER_CLUSTER, CLUSTER)}
    assert len(set(dims.values())) == 2 and all(d < -1 for d in dims.values())
    assert model_trace.nodes[SUPER_CLUSTER]["value"].reshape(-1).tolist() == list(range(NUM_SUPER))
    assert model_trace.nodes[CLUSTER]["value"].reshape(-1).tolist() == list(range(NUM_CLUSTERS))
    model_trace.compute_log_prob()
    largest = max(site["log_prob"].numel() for site in model_trace.nodes.values() if site["type"] == "sample")
    assert largest <= NUM_SUPER * NUM_CLUSTERS * BATCH


def test_marginals_at_both_levels_match_bayes_rule(float64):
    model, guide = build(hierarchical_config())
    randomise(model.prior)
    x = torch.rand(BATCH, DATA_DIM)
    marginals = cluster_marginals(model, guide, x)
    z_mean, _ = guide_normal(guide, "z", x)
    post = pair_log_joint(model.prior, z_mean)
    post = (post - post.flatten(-2).logsumexp(-1)[..., None, None]).exp()  # (N, S, K)
    assert set(marginals) == {SUPER_CLUSTER, CLUSTER}
    assert marginals[SUPER_CLUSTER].shape == (BATCH, NUM_SUPER)
    assert torch.allclose(marginals[SUPER_CLUSTER], post.sum(-1), rtol=1e-6, atol=1e-12)
    assert torch.allclose(marginals[CLUSTER], post.sum(-2), rtol=1e-6, atol=1e-12)


def test_marginal_likelihood_sums_both_levels_exactly(float64):
    """The library's importance weights equal a brute-force double sum at the same guide draws."""
    from pyro_gmvae.evaluation.marginal import importance_log_weights

    model, guide = build(hierarchical_config(likelihood="normal"))
    randomise(model.prior)
    x = torch.rand(BATCH, DATA_DIM)
    num_samples = 7
    pyro.set_rng_seed(3)
    log_w = importance_log_weights(model, guide, x, num_samples, chunk_size=num_samples)
    pyro.set_rng_seed(3)  # the same guide draws
    with torch.no_grad(), pyro.plate("samples", num_samples, dim=-2):
        z = poutine.trace(guide).get_trace(x).nodes["z"]["value"]
        loc, scale = guide_normal(guide, "z", x)
        expected = decoder_log_prob(model.decoder, z, x) + pair_log_joint(model.prior, z).flatten(-2).logsumexp(-1) \
            - normal_log_prob(z, loc, scale)
    assert log_w.shape == (num_samples, BATCH)
    assert torch.allclose(log_w, expected, rtol=1e-6, atol=0)


def test_init_from_gmm_keeps_the_fine_weights_and_groups_the_means():
    prior = HierarchicalMixturePrior(latent_dim=2, num_clusters=4, num_super_clusters=2)
    weights = torch.tensor([0.1, 0.2, 0.3, 0.4])
    means = [[0.0, 0.0], [10.0, 10.0], [0.0, 1.0], [10.0, 11.0]]
    prior.init_from_gmm(weights.numpy(), means, [[0.5, 0.5]] * 4)
    table = prior.cluster_probs().detach()
    assert torch.allclose(table.sum(0), weights, atol=1e-5)
    assert table.argmax(0).tolist() == [0, 1, 0, 1]
    assert torch.allclose(prior.loc.detach(), torch.tensor(means))


def test_learns_a_two_level_structure():
    """3 super-clusters of 3 blobs: VaDE-style pretraining + training finds both levels."""
    x, y, y_super = make_hierarchy(900, num_super=3, clusters_per_super=3, seed=0)
    data = from_tensor(torch.as_tensor(x), torch.as_tensor(y), likelihood="normal")
    model, guide = build(ModelConfig(model="hierarchical", data_dim=2, num_clusters=9, num_super_clusters=3,
                                     latent_dim=2, likelihood="normal", network="toy"))
    history = Trainer(model, guide, TrainConfig(epochs=5, batch_size=100, pretrain_epochs=20, seed=0),
                      progress=False).fit(data)
    marginals = cluster_marginals(model, guide, data.x)
    fine = hungarian_accuracy(y, marginals[CLUSTER].argmax(-1))
    coarse = hungarian_accuracy(y_super, marginals[SUPER_CLUSTER].argmax(-1))
    assert history[-1]["acc"] == pytest.approx(fine)
    assert fine >= 0.9, fine
    assert coarse >= 0.9, coarse


def test_cli_trains_the_hierarchical_model(tmp_path):
    out = tmp_path / "r"
    code = main(["train", "--model", "hierarchical", "--dataset", "synthetic", "--num-datapoints", "300",
                 "--num-clusters", "4", "--num-super-clusters", "2", "--epochs", "1", "--pretrain-epochs", "1",
                 "--out", str(out), "--no-progress"])
    assert code == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert "super_cluster_num_active_clusters" in rows[-1]
    config = json.loads((out / "config.json").read_text())
    assert config["model"]["num_super_clusters"] == 2
    assert main(["evaluate", str(out), "--num-samples", "30"]) == 0
    result = json.loads((out / "eval.json").read_text())
    assert len(result["super_cluster_cluster_shares"]) == 2 and len(result["cluster_shares"]) == 4
    assert abs(sum(result["super_cluster_cluster_shares"]) - 1) < 1e-5
