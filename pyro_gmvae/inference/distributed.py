"""Data-parallel training on PyTorch's distributed engine: ``DistributedDataParallel`` over processes
started by ``torchrun`` (gloo on the CPU, nccl on GPUs), one node or several.

Every process (rank) holds the whole data set and the same model. Each epoch all ranks draw the same
permutation; each global minibatch of ``batch_size`` datapoints is split into ``world_size`` contiguous
shards, one per rank, so the ranks see disjoint shards whose concatenation is the one-process minibatch.
The ELBO is a sum over the data plate, and DDP averages gradients over ranks, so each rank's loss is
multiplied by ``world_size``: the synchronised gradient is then the gradient of the concatenated
minibatch's loss, and Adam takes the one-process step.

.. math::

    \\nabla_\\theta \\mathcal{L}(x_{1:B}) = \\frac{1}{W} \\sum_{r=1}^{W} \\nabla_\\theta \\big(W\\,\\mathcal{L}(x^{(r)})\\big)

Free bits constrain the *global* minibatch mean of the KL: each rank all-reduces the detached KL sums
of the other ranks and adds its own, differentiable, so the gradients summed over ranks are those of
``-B relu(lambda - mean_B KL)`` (see :func:`global_mean`). Enumeration is untouched: each rank's
``TraceEnum_ELBO`` sums the clusters out exactly for its shard.

What differs from one process: the order of float summations, and the Monte Carlo noise (each rank
draws from its own stream, seeded by ``(seed, rank)``). Only rank 0 writes files.

>>> World.current().size  # outside torchrun: one process
1
"""

import os
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.distributed as dist

from ..errors import ConfigError

#: Environment variables that torchrun sets in every process it starts.
TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class World:
    """The processes training together: ``rank`` of this one among ``size``."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0

    @classmethod
    def current(cls):
        if dist.is_available() and dist.is_initialized():
            return cls(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", dist.get_rank())))
        return cls()

    @property
    def is_main(self):
        return self.rank == 0

    @property
    def distributed(self):
        return self.size > 1

    def barrier(self):
        if self.distributed:
            dist.barrier()

    def sum(self, tensor):
        """The sum over ranks of ``tensor`` (a new tensor; ``tensor`` itself is not changed)."""
        if not self.distributed:
            return tensor
        device = tensor.device
        if dist.get_backend() == "nccl" and device.type != "cuda":  # nccl reduces GPU tensors only
            device = torch.device("cuda", torch.cuda.current_device())
        out = tensor.detach().to(device, copy=True)
        dist.all_reduce(out)
        return out.to(tensor.device)

    def gather(self, obj):
        """``[obj of rank 0, obj of rank 1, ...]`` on every rank (pickled objects)."""
        if not self.distributed:
            return [obj]
        out = [None] * self.size
        dist.all_gather_object(out, obj)
        return out

    def shard(self, index):
        """This rank's contiguous part of a minibatch's ``index`` (the parts are disjoint and cover it)."""
        if not self.distributed:
            return index
        return index.tensor_split(self.size)[self.rank]

    def rank_seed(self, seed):
        """The seed of this rank's Monte Carlo noise: ``seed`` itself on rank 0 (one process is unchanged)."""
        return seed if self.rank == 0 else (seed * 1000003 + self.rank) % 2 ** 63


def launched_by_torchrun():
    return all(k in os.environ for k in TORCHRUN_ENV) and int(os.environ["WORLD_SIZE"]) > 1


def backend_for(device):
    return "nccl" if torch.device(device).type == "cuda" else "gloo"


@contextmanager
def process_group(device="cpu"):
    """Join the process group that torchrun describes in the environment (nothing outside torchrun):
    gloo on the CPU, nccl with ``device`` cuda (each process on GPU ``LOCAL_RANK``)."""
    if not launched_by_torchrun() or dist.is_initialized():
        yield World.current()
        return
    if torch.device(device).type == "cuda":
        local = int(os.environ["LOCAL_RANK"])
        if local >= torch.cuda.device_count():
            raise ConfigError(f"process {os.environ['RANK']} is local rank {local} but this node has "
                              f"{torch.cuda.device_count()} GPUs; start at most that many processes per node "
                              "(torchrun --nproc-per-node)")
        torch.cuda.set_device(local)
    dist.init_process_group(backend_for(device))
    try:
        yield World.current()
    finally:
        dist.destroy_process_group()


def global_mean(world):
    """A free-bits reduction over ranks: ``(kl_sum, count) -> (mean over the global batch, global count)``.

    The other ranks' sums enter detached, this rank's sum differentiably, so that the gradients that DDP
    sums over ranks are those of the one-process ``relu(lambda - mean KL)`` of the concatenated batch."""

    def reduce(kl_sum, count):
        both = torch.cat([kl_sum.detach().reshape(-1), kl_sum.new_tensor([float(count)])])
        total = world.sum(both)
        others = total[:-1].reshape(kl_sum.shape) - kl_sum.detach()
        num = total[-1]
        return (kl_sum + others) / num, int(round(float(num)))

    return reduce


def check_shards(world, num_datapoints, batch_size):
    """Raise :class:`ConfigError` unless every minibatch of an epoch gives each rank at least one datapoint."""
    if not world.distributed:
        return
    last = num_datapoints % batch_size or batch_size
    smallest = min(batch_size, last, num_datapoints)
    if smallest < world.size:
        raise ConfigError(f"with {world.size} processes every minibatch needs at least {world.size} datapoints, "
                          f"but one has {smallest} ({num_datapoints} datapoints in batches of {batch_size}); use a "
                          "batch size that leaves no smaller last batch (or a larger one), or fewer processes")


def wrap(objective, world, device):
    """``objective`` (an :class:`~pyro.infer.elbo.ELBOModule`) in ``DistributedDataParallel``, or as it is
    in one process. DDP broadcasts rank 0's parameters and buffers, so every rank starts from the same."""
    if not world.distributed:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.device(device).index or world.local_rank] if torch.device(device).type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=device_ids)


def launch(num_devices, argv):
    """Run ``python -m pyro_gmvae *argv`` in ``num_devices`` processes on this node, as
    ``torchrun --standalone --nproc-per-node N -m pyro_gmvae *argv`` does (torchrun's launcher, in this
    process); returns the exit status: 0, or 1 when a process failed (its error is on stderr)."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    try:
        torchrun.main(["--standalone", f"--nproc-per-node={num_devices}", "-m", "pyro_gmvae", *argv])
    except ChildFailedError:
        return 1
    return 0
