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

import logging
import os
import signal
import sys
import tempfile
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
    except BaseException as e:
        # interrupted, or another process is gone: tearing the group down can then abort the process in
        # gloo's threads ("terminate called..."); the process ends now anyway (see end_process)
        if not (isinstance(e, KeyboardInterrupt) or peer_lost(e)):
            dist.destroy_process_group()
        raise
    else:
        dist.destroy_process_group()


def end_process(code):
    """End a process of a group that was interrupted or lost a peer, without the teardown of the group
    and of torch's threads that can then abort it with a C++ message: the files are closed already."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


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


def check_plan(world, config, num_datapoints):
    """Raise :class:`ConfigError` unless ``world``'s processes can train ``config`` on ``num_datapoints``:
    what the processes would refuse, checked before they start (``--devices N``)."""
    check_jit(world, config)
    check_shards(world, num_datapoints, config.batch_size)


def check_jit(world, config):
    if world.distributed and config.jit and config.free_bits > 0:
        raise ConfigError("free bits under data-parallel training all-reduce the KL inside the objective, "
                          "which JitTraceEnum_ELBO cannot trace; drop --jit, or train in one process")


def wrap(objective, world, device):
    """``objective`` (an :class:`~pyro.infer.elbo.ELBOModule`) in ``DistributedDataParallel``, or as it is
    in one process. DDP broadcasts rank 0's parameters and buffers, so every rank starts from the same."""
    if not world.distributed:
        return objective
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [torch.device(device).index or world.local_rank] if torch.device(device).type == "cuda" else None
    return DistributedDataParallel(objective, device_ids=device_ids)


#: Set by :func:`launch` in the processes it starts: the folder where each writes its one-line error, so
#: that the launcher prints it once (not once per process) and the processes print nothing of their own.
LAUNCHER_ENV = "PYRO_GMVAE_LAUNCHER_DIR"


def launched_by_us():
    """Whether :func:`launch` (``--devices N``) started this process: it then reports for every process."""
    return launched_by_torchrun() and bool(os.environ.get(LAUNCHER_ENV))


def report_to_launcher(message):
    """Hand this process's one-line error to :func:`launch`; False outside it (print it yourself)."""
    folder = os.environ.get(LAUNCHER_ENV)
    if not folder or not launched_by_torchrun():
        return False
    try:
        with open(os.path.join(folder, f"rank{int(os.environ['RANK'])}.txt"), "w") as f:
            f.write(message)
    except OSError:
        return False
    return True


def peer_lost(error):
    """Whether ``error`` (raised inside a collective call) means another process stopped: gloo's "Connection
    reset by peer", a closed store socket, nccl's aborted communicator. Read from the text, as torch raises
    plain RuntimeErrors for most of them."""
    if isinstance(error, dist.DistError):
        return True
    text = str(error).lower()
    return isinstance(error, RuntimeError) and any(
        word in text for word in ("gloo", "nccl", "connection reset", "connection closed", "broken pipe"))


@dataclass(frozen=True)
class Launch:
    """What :func:`launch` saw: ``code`` 0 (all finished), 2 (refused: ``errors``, each once), 130 or 143
    (interrupted: Ctrl-C, SIGTERM), 1 (a process stopped: ``stopped`` says which and how)."""

    code: int
    errors: tuple = ()
    stopped: str = ""


def _describe_exit(rank, size, exitcode):
    if exitcode < 0:
        try:
            how = f"was killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            how = f"was killed by signal {-exitcode}"
    else:
        how = f"stopped with exit code {exitcode}"
    return f"process {rank} of {size} {how}"


def launch(num_devices, argv):
    """Run ``python -m pyro_gmvae *argv`` in ``num_devices`` processes on this node, as
    ``torchrun --standalone --nproc-per-node N -m pyro_gmvae *argv`` does (torchrun's launcher, in this
    process); returns a :class:`Launch`.

    torchrun starts each process in a session of its own, so Ctrl-C reaches this launcher alone, which
    forwards one SIGINT to each process. torchrun's own log lines (its notices of signals and failures)
    are silenced: this launcher reports once, for all processes."""
    from torch.distributed import run as torchrun
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    previous = os.environ.get(LAUNCHER_ENV)
    with tempfile.TemporaryDirectory(prefix="pyro-gmvae-launch-") as folder:
        os.environ[LAUNCHER_ENV] = folder
        logging.disable(logging.CRITICAL)
        try:
            torchrun.main(["--standalone", f"--nproc-per-node={num_devices}", "-m", "pyro_gmvae", *argv])
        except SignalException as e:
            return Launch(128 + int(e.sigval))
        except ChildFailedError as e:
            return _failed(e.failures, num_devices, folder)
        finally:
            logging.disable(logging.NOTSET)
            if previous is None:
                os.environ.pop(LAUNCHER_ENV, None)
            else:
                os.environ[LAUNCHER_ENV] = previous
    return Launch(0)


def _failed(failures, size, folder):
    """The :class:`Launch` of a run in which some processes failed (``failures``: rank -> ProcessFailure)."""
    errors = []
    for rank in sorted(failures):
        try:
            with open(os.path.join(folder, f"rank{rank}.txt")) as f:
                message = f.read().strip()
        except OSError:
            continue
        if message and message not in errors:
            errors.append(message)
    if errors:
        return Launch(2, tuple(errors))
    codes = {rank: failure.exitcode for rank, failure in sorted(failures.items())}
    if 130 in codes.values():  # a process was interrupted (SIGINT sent to it): it saved and stopped
        return Launch(130)
    # the process that stopped first: killed by a signal other than the launcher's SIGTERM to the others,
    # then one that failed on its own (the others fail with 1 on losing it), then any
    for wanted in (lambda c: c < 0 and c != -signal.SIGTERM, lambda c: c not in (1, -signal.SIGTERM), lambda c: True):
        ranks = [rank for rank, code in codes.items() if wanted(code)]
        if ranks:
            return Launch(1, stopped=_describe_exit(ranks[0], size, codes[ranks[0]]))
    return Launch(1, stopped="a process failed")
