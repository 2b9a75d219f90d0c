"""What each process of the two-process tests runs (a module of its own: torch.multiprocessing's spawn
imports the worker function by name in the new processes)."""

import itertools
import os
from contextlib import contextmanager
from unittest import mock

import pyro
import torch
import torch.distributed as dist

from helpers import DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS
from pyro_gmvae import ModelConfig, TrainConfig, build, from_tensor
from pyro_gmvae.inference.distributed import World
from pyro_gmvae.inference.training import Trainer

NUM_DATAPOINTS, BATCH_SIZE, EPOCHS = 12, 6, 2  # 2 steps an epoch, 4 in all; 3 datapoints a rank and step
#: (model, free-bits lambda): lambda 50 nats is above the KL, so the constraint is active.
CASES = [("vade", 0.0), ("gmvae", 0.0), ("vade", 50.0), ("gmvae", 50.0)]


@contextmanager
def shared_noise(world):
    """The Monte Carlo noise of the concatenated minibatch, sharded as the data: the k-th draw of every
    process is the k-th draw of one process on the whole minibatch, cut into the same contiguous parts
    (each process otherwise draws from its own stream, and the runs could not be compared)."""
    counter = itertools.count()
    original = torch.distributions.normal._standard_normal

    def standard_normal(shape, dtype, device):
        g = torch.Generator().manual_seed(1000 + next(counter))
        full = torch.randn((shape[0] * world.size, *shape[1:]), generator=g, dtype=dtype)
        return full.tensor_split(world.size)[world.rank].to(device)

    @contextmanager
    def paused():  # for what rank 0 alone computes (the epoch's scores): it must not consume draws
        with mock.patch("torch.distributions.normal._standard_normal", original):
            yield

    with mock.patch("torch.distributions.normal._standard_normal", standard_normal):
        yield paused


def run_case(name, lam):
    """Train ``name`` (float64, toy nets) for EPOCHS epochs in the current world; returns the parameters,
    the first step's gradients, the metrics rows and the first step's model trace facts."""
    world = World.current()
    pyro.set_rng_seed(0)
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     latent_dim=LATENT_DIM, noise_dim=NOISE_DIM, network="toy"))
    x = torch.rand(NUM_DATAPOINTS, DATA_DIM, generator=torch.Generator().manual_seed(1))
    # eager in one process too (N processes are by default): shared_noise patches Python, which a trace would bake in
    config = TrainConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=0.01, lr_decay=0.5, lr_decay_every=1,
                         min_lr=1e-4, pretrain_epochs=0, free_bits=lam, jit=False)
    trainer = Trainer(model, guide, config, progress=False)
    grads = []
    trainer.optim.register_step_pre_hook(
        lambda opt, args, kwargs: grads.append([p.grad.clone() for p in trainer.params]) if not grads else None)
    with shared_noise(world) as paused:
        evaluate = trainer.evaluate

        def evaluate_apart(data):
            with paused():
                return evaluate(data)

        trainer.evaluate = evaluate_apart
        history = trainer.fit(from_tensor(x))
    return {"params": [p.detach().clone() for p in trainer.params], "grads": grads[0],
            "rows": [{k: row[k] for k in ("elbo", "objective", "free_bits_kl", "lr") if k in row} for row in history],
            "rank": world.rank, "world_size": world.size}


def resume_case():
    """Three epochs straight, and two epochs, a checkpoint (a collective call: every rank's random state),
    a new trainer loading it and a third epoch, with each rank's own Monte Carlo noise: bit for bit."""
    import io

    x = from_tensor(torch.rand(NUM_DATAPOINTS, DATA_DIM, generator=torch.Generator().manual_seed(2)))

    def trainer(epochs):
        pyro.set_rng_seed(0)
        model, guide = build(ModelConfig(model="vade", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                         latent_dim=LATENT_DIM, network="toy"))
        return Trainer(model, guide, TrainConfig(epochs=epochs, batch_size=BATCH_SIZE, lr_decay=0.5, lr_decay_every=1,
                                                 min_lr=1e-4, pretrain_epochs=0), progress=False)

    straight = trainer(3)
    straight.fit(x)
    first = trainer(2)
    first.fit(x)
    buffer = io.BytesIO()
    torch.save(first.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=False)
    resumed = trainer(3)
    resumed.load_state_dict(state)
    resumed.fit(x)
    return {"equal": all(torch.equal(a, b) for a, b in zip(straight.params, resumed.params)),
            "world_size": state["world_size"], "rng_ranks": len(state["rng_ranks"]),
            "ranks_differ": not torch.equal(state["rng_ranks"][0]["torch"], state["rng_ranks"][1]["torch"])}


def worker(rank, world_size, port, out):
    """One of ``world_size`` processes: join the gloo group, run every case, save rank 0's results."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    torch.set_default_dtype(torch.float64)
    pyro.enable_validation(True)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        results = {f"{name}-{lam}": run_case(name, lam) for name, lam in CASES}
        torch.set_default_dtype(torch.float32)
        results["resume"] = resume_case()
        if rank == 0:
            torch.save(results, out)
    finally:
        dist.destroy_process_group()


GUIDED = ("amortized", "relaxed", "score-function")


def guided_case(strategy):
    """Two epochs of VaDE with a guided cluster inference, each rank its own Monte Carlo noise (the default);
    returns this rank's parameters before and after, and the epochs' ELBOs."""
    pyro.set_rng_seed(0)
    model, guide = build(ModelConfig(model="vade", data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     latent_dim=LATENT_DIM, network="toy", cluster_inference=strategy))
    x = torch.rand(NUM_DATAPOINTS, DATA_DIM, generator=torch.Generator().manual_seed(3))
    trainer = Trainer(model, guide, TrainConfig(epochs=EPOCHS, batch_size=BATCH_SIZE, lr=0.01, pretrain_epochs=0),
                      progress=False)
    before = [p.detach().clone() for p in trainer.params]
    history = trainer.fit(from_tensor(x))
    return {"before": before, "after": [p.detach().clone() for p in trainer.params],
            "names": [name for name, _ in trainer.objective.named_parameters()],
            "elbo": [row["elbo"] for row in history]}


def guided_worker(rank, world_size, port, out_dir):
    """One of ``world_size`` processes training every guided strategy; each rank saves its own results."""
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        torch.save({s: guided_case(s) for s in GUIDED}, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()
