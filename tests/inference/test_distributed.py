"""Data-parallel training is one-process training on the concatenated minibatch: two CPU processes
(gloo, DistributedDataParallel) against one, float64, for VaDE and GMVAE, with and without free bits.

The two processes are started once per module (both may share one core: this is about exactness).
Their Monte Carlo noise is the one process's noise cut into the same shards as the data
(``ddp_helpers.shared_noise``), so the runs are comparable draw for draw.
"""

import socket

import pytest
import torch
import torch.multiprocessing as mp

from ddp_helpers import CASES, GUIDED, guided_worker, run_case, worker
from pyro_gmvae import ConfigError, ModelConfig, TrainConfig, build
from pyro_gmvae.inference.distributed import World, check_shards, global_mean
from pyro_gmvae.inference.training import Trainer

RTOL = 1e-6


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_processes(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "rank0.pt"
    # fork: the children inherit the imported modules (spawn would import torch and pyro twice more)
    mp.start_processes(worker, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="fork")
    return torch.load(out, weights_only=False)


@pytest.fixture(scope="module")
def one_process():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        return {f"{name}-{lam}": run_case(name, lam) for name, lam in CASES}
    finally:
        torch.set_default_dtype(old)


def _close(a, b, what):
    for i, (x, y) in enumerate(zip(a, b)):
        torch.testing.assert_close(x, y, rtol=RTOL, atol=1e-12, msg=lambda m: f"{what} {i}: {m}")


@pytest.mark.parametrize("name,lam", CASES)
def test_parameters_equal_one_process_on_the_concatenated_batch(two_processes, one_process, name, lam):
    got, expected = two_processes[f"{name}-{lam}"], one_process[f"{name}-{lam}"]
    assert got["world_size"] == 2 and expected["world_size"] == 1
    _close(got["params"], expected["params"], f"{name} parameter")


@pytest.mark.parametrize("name,lam", CASES)
def test_first_gradient_equals_one_process(two_processes, one_process, name, lam):
    """With lambda above the KL, the free-bits term is that of the global batch's mean KL."""
    _close(two_processes[f"{name}-{lam}"]["grads"], one_process[f"{name}-{lam}"]["grads"], f"{name} gradient")


@pytest.mark.parametrize("name,lam", CASES)
def test_metrics_are_gathered_over_ranks(two_processes, one_process, name, lam):
    """The epoch's ELBO (and free-bits KL and objective) is the one-process value, not rank 0's half."""
    got, expected = two_processes[f"{name}-{lam}"]["rows"], one_process[f"{name}-{lam}"]["rows"]
    assert [r.keys() for r in got] == [r.keys() for r in expected]
    for g, e in zip(got, expected):
        for key in e:
            assert g[key] == pytest.approx(e[key], rel=RTOL), key
    if lam:
        assert all(r["objective"] < r["elbo"] for r in got)  # the constraint was active


@pytest.fixture(scope="module")
def guided_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp-guided")
    mp.start_processes(guided_worker, args=(2, _free_port(), str(out)), nprocs=2, join=True, start_method="fork")
    return [torch.load(out / f"rank{rank}.pt", weights_only=False) for rank in range(2)]


@pytest.mark.parametrize("strategy", GUIDED)
def test_guided_cluster_inference_trains_in_step_over_two_processes(guided_ranks, strategy):
    """Each rank draws its own noise, yet every parameter (q(c | x), the strategy's own modules, the
    score-function baseline) is averaged by DDP: the two ranks end bit for bit equal, and all of it moved."""
    first, second = (ranks[strategy] for ranks in guided_ranks)
    assert first["names"] == second["names"]
    for name, a, b, start in zip(first["names"], first["after"], second["after"], first["before"]):
        assert torch.equal(a, b), f"{name} differs between the ranks"
        assert torch.isfinite(a).all() and not torch.equal(a, start), f"{name} did not train"
    assert first["elbo"] == second["elbo"]  # the epoch's ELBO is gathered over the ranks


def test_resume_of_a_two_process_run_is_exact(two_processes):
    resume = two_processes["resume"]
    assert resume["world_size"] == 2 and resume["rng_ranks"] == 2 and resume["ranks_differ"]
    assert resume["equal"]


def test_a_checkpoint_of_two_processes_refuses_one():
    from pyro_gmvae.errors import CheckpointError
    from pyro_gmvae.inference.training import check_world_size

    with pytest.raises(CheckpointError, match="written by a run on 2 process.*--devices 2"):
        check_world_size({"world_size": 2}, World())
    check_world_size({}, World())  # a checkpoint from before data-parallel training: one process


def test_global_mean_in_one_process_is_the_plain_mean():
    kl = torch.tensor([[1.0], [2.0], [6.0]], requires_grad=True)
    mean, count = global_mean(World())(kl.sum(0, keepdim=True), 3)
    assert count == 3 and torch.equal(mean, kl.mean(0, keepdim=True))
    mean.sum().backward()
    assert torch.equal(kl.grad, torch.full_like(kl, 1 / 3))


def test_shards_are_disjoint_and_cover_the_minibatch():
    index = torch.arange(7)
    shards = [World(rank, 2).shard(index) for rank in range(2)]
    assert torch.equal(torch.cat(shards), index)


def test_a_minibatch_too_small_for_every_rank_fails_before_training():
    check_shards(World(0, 2), 12, 6)
    with pytest.raises(ConfigError, match="every minibatch needs at least 4 datapoints, but one has 2"):
        check_shards(World(0, 4), 14, 6)


def test_two_models_in_one_process_stay_independent():
    """Same architecture, same parameter names, no pyro.clear_param_store(): each trainer trains its own."""
    import pyro

    from pyro_gmvae import from_tensor

    config = ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy")
    data = from_tensor(torch.rand(20, 6))
    train = TrainConfig(epochs=1, batch_size=10, pretrain_epochs=0)
    pyro.set_rng_seed(0)
    first, first_guide = build(config)
    pyro.set_rng_seed(0)
    second, second_guide = build(config)
    Trainer(first, first_guide, train, progress=False).fit(data)
    before = [p.detach().clone() for p in second.parameters()]
    after_first = [p.detach().clone() for p in first.parameters()]
    Trainer(second, second_guide, train, progress=False).fit(data)
    assert all(torch.equal(a, b) for a, b in zip(after_first, first.parameters()))  # untouched by the second
    assert all(torch.equal(a, b) for a, b in zip(after_first, second.parameters()))  # same seed, same run
    assert not all(torch.equal(a, b) for a, b in zip(before, second.parameters()))
    assert len(pyro.get_param_store()) == 0  # the user's store was never written
