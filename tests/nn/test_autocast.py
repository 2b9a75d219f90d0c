"""bfloat16 autocast of the networks: the ELBO stays float32 and close to the float32 loss."""

import math

import pyro
import torch

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor, make_elbo
from pyro_gmvae.nn import use_autocast


def test_autocast_networks_keep_a_float32_elbo_close_to_float32():
    model, guide = build(ModelConfig(data_dim=64, num_clusters=4, latent_dim=5, network="small"))
    x = torch.rand(50, 64)
    pyro.set_rng_seed(0)
    full = make_elbo().loss(model, guide, x)
    keys = set(model.state_dict()) | set(guide.state_dict())
    use_autocast(model.decoder.net)
    use_autocast(guide.encoder)
    assert guide.encoder(x).dtype == torch.float32
    pyro.set_rng_seed(0)
    mixed = make_elbo().loss(model, guide, x)
    assert math.isfinite(mixed) and abs(mixed - full) / abs(full) < 2e-2
    assert (set(model.state_dict()) | set(guide.state_dict())) == keys  # checkpoints unchanged


def test_trainer_compute_dtype_bfloat16_trains():
    data = from_tensor(torch.rand(200, 64))
    model, guide = build(ModelConfig(data_dim=64, num_clusters=4, latent_dim=5, network="small"))
    history = Trainer(model, guide, TrainConfig(epochs=2, batch_size=100, pretrain_epochs=1,
                                                compute_dtype="bfloat16"), progress=False).fit(data)
    assert all(math.isfinite(r["elbo"]) for r in history)
    assert all(p.dtype == torch.float32 for p in model.parameters())
