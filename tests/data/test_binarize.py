"""Binarized data: one fixed static draw, a fresh seeded draw per training epoch, refused outside [0, 1]."""

import json

import pytest
import torch

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor
from pyro_gmvae.data.binarize import STATIC_SEED, binarize_epoch, binarize_static, check_binarizable
from pyro_gmvae.errors import ConfigError, DataError


def test_the_static_draw_is_fixed_binary_and_has_the_gray_levels_as_means():
    x = torch.rand(2000, 7)
    draw = binarize_static(x)
    assert set(draw.unique().tolist()) <= {0.0, 1.0} and draw.dtype == x.dtype
    assert torch.equal(draw, binarize_static(x.clone()))  # whatever the global random state
    torch.manual_seed(123)
    assert torch.equal(draw, binarize_static(x))
    assert torch.equal(draw, torch.bernoulli(x, generator=torch.Generator().manual_seed(STATIC_SEED)))
    assert (draw - x).mean().abs() < 0.01  # each pixel's mean is its gray level
    assert torch.equal(binarize_static(draw), draw)  # binary data are their own draw


def test_dynamic_draws_differ_per_epoch_and_repeat_per_seed():
    x = torch.rand(500, 7)
    first, second = binarize_epoch(x, seed=3, epoch=0), binarize_epoch(x, seed=3, epoch=1)
    assert not torch.equal(first, second) and not torch.equal(first, binarize_epoch(x, seed=4, epoch=0))
    assert torch.equal(first, binarize_epoch(x, seed=3, epoch=0))
    assert not torch.equal(first, binarize_static(x))


def test_data_outside_the_unit_interval_are_refused():
    with pytest.raises(DataError, match=r"--binarize static .* \[-1, 2\], outside \[0, 1\]"):
        check_binarizable(torch.tensor([[-1.0, 2.0]]), "static")
    check_binarizable(torch.tensor([[-1.0, 2.0]]), None)
    with pytest.raises(ConfigError, match="binarize"):
        TrainConfig(binarize="sometimes")


def _fit(binarize, x, epochs=3):
    model, guide = build(ModelConfig(data_dim=x.shape[1], num_clusters=2, latent_dim=2, network="toy"))
    trainer = Trainer(model, guide, TrainConfig(epochs=epochs, batch_size=20, seed=5, binarize=binarize),
                      progress=False)
    seen = []
    train_epoch = trainer.train_epoch
    trainer.train_epoch = lambda xs: (seen.append(xs.clone()), train_epoch(xs))[1]
    trainer.fit(from_tensor(x))
    return trainer, seen


def test_training_sees_the_static_draw_or_a_fresh_draw_per_epoch():
    x = torch.rand(40, 6)
    _, seen = _fit("static", x)
    assert all(torch.equal(s, binarize_static(x)) for s in seen)
    _, seen = _fit("dynamic", x)
    assert [torch.equal(s, binarize_epoch(x, 5, epoch)) for epoch, s in enumerate(seen)] == [True] * 3
    _, seen = _fit(None, x)
    assert all(torch.equal(s, x) for s in seen)
    with pytest.raises(DataError, match="--binarize dynamic"):
        _fit("dynamic", x * 3)


def test_a_binarized_run_records_it_and_resumes_to_the_same_result(tmp_path):
    from pyro_gmvae.runs import load_run, train_run

    data = from_tensor(torch.rand(40, 6))
    config = ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy")

    def train(out, epochs, resume=False):
        train_run(config, TrainConfig(epochs=epochs, batch_size=20, pretrain_epochs=0, binarize="dynamic"), data,
                  out, resume=resume, progress=False, log=lambda *a: None)

    train(tmp_path / "straight", 2)
    train(tmp_path / "resumed", 1)
    train(tmp_path / "resumed", 2, resume=True)
    assert json.loads((tmp_path / "straight" / "config.json").read_text())["train"]["binarize"] == "dynamic"
    straight, resumed = load_run(tmp_path / "straight")[0], load_run(tmp_path / "resumed")[0]
    for (name, a), b in zip(straight.state_dict().items(), resumed.state_dict().values()):
        assert torch.equal(a, b), name
