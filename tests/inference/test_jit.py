"""JIT by default where it is safe: the traced loss and its gradients equal the eager ones on the same random
numbers for every built-in model the default traces, and the default stays eager everywhere else."""

import warnings

import pyro
import pytest
import torch
from torch import nn

from pyro_gmvae import ModelConfig, Trainer, TrainConfig, build, from_tensor, make_elbo
from pyro_gmvae.inference.elbo import use_jit

PROVEN = [("vade", {}), ("vade", {"prior": "full-mixture"}), ("vade", {"likelihood": "normal"}),
          ("vade", {"likelihood": "continuous-bernoulli"}), ("vade", {"network": "small"}),
          ("gmvae", {"noise_dim": 2}), ("vae", {}), ("hierarchical", {"num_super_clusters": 2})]


def _build(kind, **extra):
    pyro.clear_param_store()
    options = {"network": "toy", **extra}
    return build(ModelConfig(model=kind, data_dim=6, num_clusters=4, latent_dim=2, **options))


def _loss_and_grads(elbo, model, guide, x, seed):
    pyro.set_rng_seed(seed)
    loss = elbo.differentiable_loss(model, guide, x)
    params = [p for m in (model, guide) for p in m.parameters()]
    return loss, torch.autograd.grad(loss, params, allow_unused=True)


@pytest.mark.parametrize("num_particles", [1, 3])
@pytest.mark.parametrize("kind,extra", PROVEN, ids=[f"{k}-{'-'.join(map(str, e.values())) or 'default'}"
                                                     for k, e in PROVEN])
def test_traced_loss_is_the_eager_loss(float64, kind, extra, num_particles):
    model, guide = _build(kind, **extra)
    assert use_jit(TrainConfig(num_particles=num_particles), model, guide)  # the default traces this model
    x = torch.rand(7, 6).round()
    jit = make_elbo(num_particles, jit=True)
    jit.differentiable_loss(model, guide, x)  # compile: tracing runs the model and guide, which draws noise
    for seed in range(3):
        traced, traced_grads = _loss_and_grads(jit, model, guide, x, seed)
        eager, eager_grads = _loss_and_grads(make_elbo(num_particles), model, guide, x, seed)
        torch.testing.assert_close(traced, eager, rtol=1e-10, atol=0)
        for a, b in zip(traced_grads, eager_grads):
            if a is None or b is None:
                assert a is None and b is None
            else:
                torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-12)


class PluginHead(nn.Module):  # a module of the user's own: not proven under JIT
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(1, 1)


@pytest.mark.parametrize("config,why", [
    (TrainConfig(free_bits=0.5), "free bits: their KL is reported from every step"),
    (TrainConfig(compute_dtype="bfloat16"), "bfloat16 autocast is not proven"),
    (TrainConfig(jit=False), "asked"),
])
def test_the_default_stays_eager(config, why):
    model, guide = _build("vade")
    assert not use_jit(config, model, guide), why


def test_eager_in_several_processes_with_another_strategy_a_plugin_module_or_the_lowrank_guide():
    model, guide = _build("vade")
    assert not use_jit(TrainConfig(), model, guide, distributed=True)
    assert not use_jit(TrainConfig(), model, guide, strategy="relaxed")
    assert use_jit(TrainConfig(jit=True), model, guide, strategy="relaxed")  # an explicit choice is honoured
    model.decoder.extra = PluginHead()
    assert not use_jit(TrainConfig(), model, guide)
    model, guide = _build("vade", guide="lowrank")
    assert not use_jit(TrainConfig(), model, guide)


def test_the_default_trainer_traces_and_keeps_torch_deprecation_warnings_to_itself():
    model, guide = _build("vade")
    data = from_tensor(torch.rand(45, 6).round())  # 45 = 2 x 20 + 5: the last, smaller minibatch retraces
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=20, pretrain_epochs=0), progress=False)
    assert trainer.jit
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        history = trainer.fit(data)
    assert [w for w in caught if "jit" in str(w.message)] == []
    assert all(torch.isfinite(torch.tensor(row["elbo"])) for row in history)
    model, guide = _build("vade")
    assert not Trainer(model, guide, TrainConfig(epochs=1, free_bits=0.5), progress=False).jit


def test_a_traced_run_is_the_eager_run_and_the_compiled_loss_replays_at_a_smaller_batch(float64):
    """Tracing leaves the random state alone (Trainer._trace), so the default (traced) training takes the eager
    training's steps, the last, smaller minibatch (45 = 2 x 20 + 5) included, in float64 to rounding."""
    data = from_tensor(torch.rand(45, 6).round())
    histories = {}
    for jit in (None, False):
        pyro.set_rng_seed(0)
        model, guide = _build("vade")
        trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=20, pretrain_epochs=0, jit=jit),
                          progress=False)
        assert trainer.jit == (jit is None)
        histories[jit] = [row["elbo"] for row in trainer.fit(data)]
    assert histories[None] == pytest.approx(histories[False], rel=1e-9)

    model, guide = _build("gmvae", noise_dim=2)
    jit = make_elbo(jit=True)
    jit.differentiable_loss(model, guide, torch.rand(7, 6).round())  # compiled at 7 points
    x = torch.rand(5, 6).round()
    traced, _ = _loss_and_grads(jit, model, guide, x, 1)
    eager, _ = _loss_and_grads(make_elbo(), model, guide, x, 1)
    torch.testing.assert_close(traced, eager, rtol=1e-10, atol=0)
