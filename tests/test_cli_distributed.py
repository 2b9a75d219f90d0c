"""``pyro-gmvae train`` in two CPU processes (gloo), as torchrun starts it: rank 0 alone writes the run folder
and reports; the checkpoint carries both ranks' random states, and resuming it needs two processes.

The default test forks the two processes with torchrun's environment (fast: no new interpreters); the slow
one goes through ``--devices 2`` (torchrun's launcher), as guide 09 does."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torch.multiprocessing as mp

from pyro_gmvae import cli, runs

REPO = Path(__file__).resolve().parents[1]
TINY = ["--model", "vade", "--dataset", "synthetic", "--num-datapoints", "120", "--network", "toy",
        "--num-clusters", "3", "--batch-size", "40", "--pretrain-epochs", "1", "--no-progress"]


def _train(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.run([sys.executable, "-m", "pyro_gmvae", "train", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def _rank(rank, port, argv):
    """One process as torchrun would start it: its rank and the rendezvous in the environment."""
    os.environ.update(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2",
                      MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(1)
    code = cli.main(argv)
    if code:
        raise SystemExit(code)


def _torchrun_like(*argv):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.start_processes(_rank, args=(port, ["train", *argv]), nprocs=2, join=True, start_method="fork")


def test_two_processes_train_and_rank_0_writes(tmp_path, capfd):
    out = tmp_path / "run"
    _torchrun_like(*TINY, "--epochs", "2", "--out", str(out))
    reports = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith("{")]
    assert len(reports) == 1 and reports[0]["epoch"] == 2  # one report: rank 0's
    assert sorted(p.name for p in out.iterdir()) == sorted([runs.CHECKPOINT, runs.CONFIG, runs.METRICS,
                                                            runs.PRETRAINED])  # and no run.lock left
    state = runs.load_checkpoint(out)
    assert state["world_size"] == 2 and len(state["rng_ranks"]) == 2
    assert [row["epoch"] for row in runs.read_metrics(out)] == [1, 2]
    assert "acc" in runs.read_metrics(out)[-1]

    # one process cannot continue it exactly: refused before anything is written
    assert cli.main(["train", "--resume", str(out), "--epochs", "3", "--no-progress"]) == 2
    assert "--devices 2" in capfd.readouterr().err
    assert runs.load_checkpoint(out)["epoch"] == 2
    _torchrun_like("--resume", str(out), "--epochs", "3", "--no-progress")
    assert [row["epoch"] for row in runs.read_metrics(out)] == [1, 2, 3]
    assert not (out / runs.LOCK).exists()


@pytest.mark.slow
def test_devices_resume_continues_exactly(tmp_path):
    """Two epochs, resumed to three, against three straight (each rank's random state travels)."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    assert _train("--devices", "2", *TINY, "--epochs", "3", "--out", str(straight)).returncode == 0
    assert _train("--devices", "2", *TINY, "--epochs", "2", "--out", str(resumed)).returncode == 0
    result = _train("--devices", "2", "--resume", str(resumed), "--epochs", "3", "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    a, b = runs.load_checkpoint(straight), runs.load_checkpoint(resumed)
    for part in ("model", "guide"):
        assert all(torch.equal(a[part][k], b[part][k]) for k in a[part])
    assert not (resumed / runs.LOCK).exists()
