"""Both models learn the synthetic arcs: clustering accuracy >= 0.95 in a short seeded CPU run."""

import pytest

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, load_dataset
from pyro_gmvae.models import MODELS


@pytest.mark.parametrize("name,epochs", [("vade", 10), ("gmvae", 20)])
def test_learns_synthetic_arcs(name, epochs):
    data = load_dataset("synthetic", num_datapoints=2000, seed=0)
    model, guide = build(ModelConfig(model=name, data_dim=2, num_clusters=5, latent_dim=2, noise_dim=2,
                                     network="toy", likelihood="normal"))
    config = TrainConfig(epochs=epochs, batch_size=100, lr=2e-3, seed=0,
                         pretrain_epochs=20 if MODELS[name].pretrain_epochs else 0)
    history = Trainer(model, guide, config, progress=False).fit(data)
    assert history[-1]["acc"] >= 0.95, history[-1]
    assert history[-1]["num_active_clusters"] == 5
