"""Data-parallel training speed: examples per second of VaDE training steps with 1 process of 2 threads
against 2 processes of 1 thread each (DistributedDataParallel over gloo, the library's trainer step), and
the communication share of a 2-process step.

Each variant runs ``--steps`` steps of the library's step (``Trainer._step``: ELBOModule loss, backward,
torch Adam) on a global minibatch of ``--batch`` random 784-pixel images, after ``--warmup`` steps, timed
with the wall clock (parallel work is the point). The 2-process run also times the same steps under
DDP's ``no_sync()`` (no gradient all-reduce): the communication share is ``1 - no_sync time / time``.
The processes are started with fork and pinned by the caller (``taskset -c 0,1``).

Run ``taskset -c 0,1 python benchmarks/distributed.py [--steps 40] [--out benchmarks/results/distributed.json]``.
"""

import argparse
import datetime
import json
import os
import platform
import socket
import sys
import time

import pyro
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from pyro_gmvae import ModelConfig, TrainConfig, build
from pyro_gmvae.inference.distributed import World, wrap
from pyro_gmvae.inference.training import Trainer

TABLE = "Data-parallel"
COLUMNS = ["name", "processes", "threads_per_process", "examples_per_s", "speedup", "communication_share",
           "step_ms"]
NOTES = ("VaDE training steps (the library's step: ELBOModule loss, backward, one torch Adam) on a global minibatch "
         "of random 784-pixel images, wall-clock time, float32, CPU. 2 processes: DistributedDataParallel over "
         "gloo, each process a shard of half the minibatch and 1 intra-op thread; 1 process: 2 intra-op threads. "
         "`communication_share` = 1 - (time of the same steps under DDP's no_sync(), i.e. without the gradient "
         "all-reduce) / (time with it). `speedup` is examples/s over the 1-process row of the same network.")


def _trainer(network, batch):
    pyro.set_rng_seed(0)
    model, guide = build(ModelConfig(model="vade", data_dim=784, num_clusters=10, latent_dim=10, network=network))
    return Trainer(model, guide, TrainConfig(batch_size=batch, pretrain_epochs=0), progress=False)


def _time_steps(trainer, x, steps, warmup, sync=True):
    step_fn = trainer._step_fn
    for _ in range(warmup):
        trainer._step(x)
    if trainer.world.distributed:
        dist.barrier()
    t0 = time.perf_counter()
    for _ in range(steps):
        if sync or not trainer.world.distributed:
            trainer._step(x)
        else:
            with step_fn.no_sync():
                trainer._step(x)
    if trainer.world.distributed:
        dist.barrier()
    return time.perf_counter() - t0


def one_process(network, batch, steps, warmup, threads):
    torch.set_num_threads(threads)
    trainer = _trainer(network, batch)
    x = torch.rand(batch, 784, generator=torch.Generator().manual_seed(0))
    with trainer.local_params:
        return _time_steps(trainer, x, steps, warmup)


def _worker(rank, world_size, port, network, batch, steps, warmup, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    dist.init_process_group("gloo", rank=rank, world_size=world_size)
    try:
        trainer = _trainer(network, batch)
        x = torch.rand(batch, 784, generator=torch.Generator().manual_seed(0))
        x = x[World.current().shard(torch.arange(batch))]
        with trainer.local_params:
            trainer._step_fn = wrap(trainer.objective, trainer.world, "cpu")
            synced = _time_steps(trainer, x, steps, warmup)
            unsynced = _time_steps(trainer, x, steps, 0, sync=False)
        if rank == 0:
            torch.save({"seconds": synced, "no_sync_seconds": unsynced}, out)
    finally:
        dist.destroy_process_group()


def two_processes(network, batch, steps, warmup, out):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_worker, args=(2, port, network, batch, steps, warmup, out), nprocs=2, join=True,
                       start_method="fork")
    return torch.load(out)


def _busy_elsewhere():
    """The load average beyond this benchmark's processes, as context (a shared machine)."""
    try:
        return round(os.getloadavg()[0], 2)
    except OSError:
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--networks", nargs="+", default=["vade", "toy"])
    parser.add_argument("--note", default=None, help="what else ran on the machine meanwhile")
    parser.add_argument("--out", default="benchmarks/results/distributed.json")
    args = parser.parse_args(argv)
    load_before = _busy_elsewhere()
    now = datetime.datetime.now().astimezone()
    common = {"table": TABLE, "torch": torch.__version__, "pyro": pyro.__version__, "batch": args.batch,
              "dtype": "float32", "device": "cpu", "clock": "wall", "steps": args.steps,
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores visible, no GPU",
              "date": now.strftime("%Y-%m-%d"), "python": platform.python_version(),
              "command": "python benchmarks/distributed.py " + " ".join(argv if argv is not None else sys.argv[1:]),
              "cores_busy_elsewhere": args.note or f"load average {load_before} before the run"}
    rows = []
    tmp = os.path.join(os.path.dirname(os.path.abspath(args.out)), ".distributed-rank0.pt")
    for network in args.networks:
        single = one_process(network, args.batch, args.steps, args.warmup, threads=2)
        two = two_processes(network, args.batch, args.steps, args.warmup, tmp)
        os.unlink(tmp)
        base = args.batch * args.steps / single
        for name, procs, threads, seconds, comm in (
                (f"VaDE, {network} nets: 1 process x 2 threads", 1, 2, single, None),
                (f"VaDE, {network} nets: 2 processes x 1 thread (DDP, gloo)", 2, 1, two["seconds"],
                 1 - two["no_sync_seconds"] / two["seconds"])):
            eps = args.batch * args.steps / seconds
            rows.append(dict(common, name=name, network=network, processes=procs, threads_per_process=threads,
                             examples_per_s=round(eps, 1), speedup=round(eps / base, 3),
                             communication_share=None if comm is None else round(comm, 3),
                             step_ms=round(seconds / args.steps * 1e3, 2)))
            print(f"{name}: {eps:.0f} examples/s, step {seconds / args.steps * 1e3:.1f} ms"
                  + ("" if comm is None else f", communication {comm:.1%}"), file=sys.stderr)
    payload = {"table": TABLE, "generated": now.isoformat(timespec="seconds"),
               "tables": {TABLE: {"columns": COLUMNS, "notes": NOTES}}, "rows": rows}
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
