"""Training on CUDA: models, guides, data and the ELBO on the GPU (skipped without one)."""

import pytest
import torch

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, load_dataset

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")


@pytest.mark.parametrize("name", ["vade", "gmvae", "vae"])
@pytest.mark.parametrize("jit", [False, True])
def test_trains_on_cuda(name, jit):
    data = load_dataset("synthetic", num_datapoints=400, device="cuda")
    assert data.x.is_cuda
    model, guide = build(ModelConfig(model=name, data_dim=2, num_clusters=5, latent_dim=2, noise_dim=2,
                                     network="toy", likelihood="normal"))
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=100, device="cuda", pretrain_epochs=1,
                                                num_particles=2, jit=jit), progress=False)
    history = trainer.fit(data)
    assert all(p.is_cuda for p in model.parameters()) and all(p.is_cuda for p in guide.parameters())
    assert len(history) == 2 and all(torch.isfinite(torch.tensor(r["elbo"])) for r in history)
