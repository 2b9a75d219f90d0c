"""What training tells its user: a line per phase, progress per step, which collapse count is low, and no
silent skip of the GMM initialisation; a fixed-weights mixture keeps its weights through all of it."""

import warnings

import pytest
import torch

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor
from pyro_gmvae.errors import ConfigError
from pyro_gmvae.models import MixturePrior


def _trainer(progress=False, **model):
    config = ModelConfig(**{"data_dim": 6, "num_clusters": 4, "latent_dim": 2, "network": "toy", **model})
    model, guide = build(config)
    return Trainer(model, guide, TrainConfig(epochs=2, batch_size=10, pretrain_epochs=1), progress=progress)


@pytest.mark.parametrize("active, used, low, fine", [
    (4, 1, "only 1 of 4 clusters are the most probable cluster", "while 4 of 4 clusters are active"),
    (1, 4, "only 1 of 4 clusters are active", "while 4 of 4 clusters are the most probable"),
])
def test_the_collapse_warning_names_the_low_count(active, used, low, fine):
    with pytest.warns(RuntimeWarning) as record:
        _trainer()._warn_collapse({"epoch": 3, "num_active_clusters": active, "num_used_clusters": used})
    message = str(record[0].message)
    assert message.startswith(f"epoch 3: {low}") and fine in message and "collapsing" in message


def test_the_collapse_warning_comes_once_per_run():
    trainer = _trainer()
    with pytest.warns(RuntimeWarning) as record:
        for epoch in (3, 4, 5):
            trainer._warn_collapse({"epoch": epoch, "num_active_clusters": 1, "num_used_clusters": 1})
    assert [str(w.message)[:8] for w in record] == ["epoch 3:"]


def test_pretraining_a_prior_without_init_from_gmm_says_so():
    trainer = _trainer(model="vae")
    with pytest.warns(RuntimeWarning, match="has no init_from_gmm.*--pretrain-epochs 0"):
        trainer.pretrain(from_tensor(torch.rand(40, 6)))


def test_fixed_weights_stay_uniform_through_gmm_init_and_training():
    trainer = _trainer(fixed_weights=True)
    prior = trainer.model.prior
    assert "logits" not in dict(prior.named_parameters()) and prior.fixed_weights
    prior.init_from_gmm([0.7, 0.1, 0.1, 0.1], torch.ones(4, 2), torch.ones(4, 2))
    assert torch.equal(prior.logits, torch.zeros(4)) and torch.equal(prior.loc, torch.ones(4, 2))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # collapse on random data is beside the point
        trainer.fit(from_tensor(torch.rand(40, 6)))
    assert torch.equal(prior.logits, torch.zeros(4))
    # a learned mixture takes the GMM's weights
    learned = MixturePrior(latent_dim=2, num_clusters=4)
    learned.init_from_gmm([0.7, 0.1, 0.1, 0.1], torch.ones(4, 2), torch.ones(4, 2))
    assert torch.allclose(learned.logits.softmax(-1), torch.tensor([0.7, 0.1, 0.1, 0.1]))


def test_fixed_weights_on_a_prior_without_the_option_is_refused():
    with pytest.raises(ConfigError, match="'conditional-mixture' has no fixed_weights option"):
        ModelConfig(model="gmvae", fixed_weights=True)


def test_progress_moves_per_step_and_each_phase_has_a_line(capsys):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        _trainer(progress=True).fit(from_tensor(torch.rand(40, 6)))
    err = capsys.readouterr().err
    for phase in ("pretraining the autoencoder: 1 epochs", "4-component", "training: epochs 1 to 2, 4 steps each"):
        assert phase in err, err
    assert "8/8" in err and "step" in err  # 2 epochs of 4 steps, counted per step
