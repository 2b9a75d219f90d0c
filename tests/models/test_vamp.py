"""The build path (components receive what they declare) and the VampPrior, against hand-written loops."""

import math

import pyro
import pytest
import torch

from helpers import BATCH, DATA_DIM, LATENT_DIM, assert_elbo_matches, decoder_log_prob, guide_normal, normal_log_prob
from pyro_gmvae import ConfigError, ModelConfig, TrainConfig, build
from pyro_gmvae.data import from_tensor
from pyro_gmvae.evaluation.marginal import importance_log_weights
from pyro_gmvae.inference.training import Trainer
from pyro_gmvae.models import PRIORS, GuideLink, build_prior

K = 7  # pseudo-inputs, distinct from the other sizes


def _vamp(likelihood="bernoulli", **kw):
    return build(ModelConfig(prior="vamp", num_pseudo_inputs=K, data_dim=DATA_DIM, latent_dim=LATENT_DIM,
                             likelihood=likelihood, network="toy", **kw))


def vamp_log_prior(model, guide, z):
    """log (1/K) sum_k N(z; loc(u_k), scale(u_k)), a loop over pseudo-inputs through the guide's own layers."""
    loc, scale = guide_normal(guide, "z", model.prior.inputs())
    terms = [normal_log_prob(z, loc[k], scale[k]) for k in range(K)]
    return torch.logsumexp(torch.stack(terms, -1), -1) - math.log(K)


@pytest.mark.parametrize("likelihood", ["bernoulli", "normal"])
def test_the_enumerated_elbo_is_the_hand_written_one(likelihood, float64):
    model, guide = _vamp(likelihood)
    x = torch.rand(BATCH, DATA_DIM)

    def hand_written(guide_trace):
        z = guide_trace.nodes["z"]["value"]
        loc, scale = guide_normal(guide, "z", x)
        log_q = normal_log_prob(z, loc, scale)
        return -(decoder_log_prob(model.decoder, z, x) + vamp_log_prior(model, guide, z) - log_q).sum()

    assert_elbo_matches(model, guide, x, hand_written, rtol=1e-10)  # loss and every gradient


def test_the_importance_weights_sum_the_pseudo_inputs_exactly(float64):
    model, guide = _vamp()
    x = torch.rand(BATCH, DATA_DIM).round()
    pyro.set_rng_seed(3)
    weights = importance_log_weights(model, guide, x, num_samples=5)
    pyro.set_rng_seed(3)
    loc, scale = guide_normal(guide, "z", x)
    z = torch.distributions.Normal(loc, scale).rsample((5,))
    expected = (decoder_log_prob(model.decoder, z, x) + vamp_log_prior(model, guide, z)
                - normal_log_prob(z, loc, scale))
    assert torch.allclose(weights, expected.detach(), rtol=1e-10, atol=1e-10)


def test_the_encoder_is_shared_and_registered_once():
    model, guide = _vamp()
    assert model.prior.guide() is guide and isinstance(model.prior.guide, GuideLink)
    model_ids = {id(p) for p in model.parameters()}
    assert model_ids.isdisjoint(id(p) for p in guide.parameters())  # the encoder is the guide's alone
    assert not any(k.startswith("prior.guide") for k in model.state_dict())
    trainer = Trainer(model, guide, TrainConfig(epochs=1, batch_size=10), progress=False)
    assert len(trainer.params) == len({id(p) for p in trainer.params}) == len(model_ids) + len(list(guide.parameters()))
    # the prior's gradient reaches the encoder: p(z) is made of q(z | u_k)
    before = {k: v.clone() for k, v in guide.state_dict().items()}
    x = torch.rand(60, DATA_DIM).round()
    trainer.fit(from_tensor(x))
    assert all(not torch.equal(before[k], v) for k, v in guide.state_dict().items())


def test_pseudo_inputs_start_at_data_rows_once():
    model, guide = _vamp()
    x = torch.rand(40, DATA_DIM).round()
    trainer = Trainer(model, guide, TrainConfig(epochs=0), progress=False)
    trainer.fit(from_tensor(x))
    rows = {tuple(r) for r in x.tolist()}
    assert all(tuple(u) in rows for u in model.prior.pseudo_inputs.tolist()) and bool(model.prior.initialised)
    start = model.prior.pseudo_inputs.clone()
    model.prior.init_from_data(torch.zeros(40, DATA_DIM))  # a started prior (a resumed run) keeps its own
    assert torch.equal(model.prior.pseudo_inputs, start)


def test_a_prior_declares_what_it_needs():
    class NeedsData(PRIORS["standard-normal"]):
        def __init__(self, latent_dim, data_dim, likelihood, encoder, **unused):
            super().__init__(latent_dim)
            self.got = (data_dim, likelihood, encoder.out_dim)

    PRIORS.register("test-needs-data", NeedsData)
    try:
        model, guide = build(ModelConfig(prior="test-needs-data", data_dim=DATA_DIM, latent_dim=LATENT_DIM,
                                         likelihood="normal", network="toy"))
        assert model.prior.got == (DATA_DIM, "normal", guide.encoder.out_dim)
        with pytest.raises(ConfigError, match=r"needs \['encoder'\], which build_prior was not given"):
            build_prior(ModelConfig(prior="test-needs-data", data_dim=DATA_DIM, network="toy"))
    finally:
        PRIORS.unregister("test-needs-data")


@pytest.mark.parametrize("kw, message", [
    (dict(prior="vamp", num_pseudo_inputs=0), "num_pseudo_inputs must be"),
    (dict(prior="mixture", num_pseudo_inputs=5), "is for a prior with pseudo-inputs such as 'vamp'"),
    (dict(prior="vamp", cluster_inference="amortized"), "trains with cluster inference exact"),
])
def test_bad_vamp_settings_are_one_line(kw, message):
    with pytest.raises(ConfigError, match=message) as e:
        ModelConfig(data_dim=DATA_DIM, network="toy", **kw)
    assert "\n" not in str(e.value)


def test_num_pseudo_inputs_sets_the_components():
    config = ModelConfig(prior="vamp", num_pseudo_inputs=500, num_clusters=10, data_dim=DATA_DIM)
    assert config.num_clusters == 500 and ModelConfig.from_dict(config.to_dict()) == config
