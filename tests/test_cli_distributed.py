"""``pyro-gmvae train`` in two CPU processes (gloo), as torchrun starts it: rank 0 alone writes the run folder
and reports; the checkpoint carries both ranks' random states, and resuming it needs two processes.

The default test forks the two processes with torchrun's environment (fast: no new interpreters); the slow
one goes through ``--devices 2`` (torchrun's launcher), as guide 09 does."""

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
import torch.multiprocessing as mp

from cli_cases import TINY as CASE_TINY, assert_refused, good_run, on_run, train  # noqa: F401
from pyro_gmvae import cli, runs
from pyro_gmvae.inference import distributed

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
    reports = [line for line in capfd.readouterr().out.splitlines() if line.startswith("pyro-gmvae: trained")]
    assert len(reports) == 1 and "epoch 2 of 2" in reports[0]  # one report: rank 0's
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


# -- refusals before any process starts --------------------------------------------------------------

def _lock_held(run):
    (run / runs.LOCK).write_text(json.dumps({"pid": 1, "host": socket.gethostname()}) + "\n")  # pid 1 lives


#: Each refused by the launcher itself: one line, exit status 2, nothing written, no process started.
LAUNCHER_CASES = {
    "more-than-cores": (train("--devices", str((os.cpu_count() or 1) + 1)), ["--force-devices", "CPU core"]),
    "force-alone": (train("--force-devices"), ["--force-devices", "drop it"]),
    "force-with-one": (train("--devices", "1", "--force-devices"), ["--force-devices", "drop it"]),
    "devices-zero": (train("--devices", "0"), ["--devices must be > 0"]),
    "batch-of-one": (train("--devices", "2", "--batch-size", "1"), ["at least 2 datapoints", "batch size"]),
    "jit-free-bits": (train("--devices", "2", "--jit", "--free-bits", "0.5"), ["drop --jit"]),
    "bad-flag-value": (train("--devices", "2", "--lr", "-1"), ["lr must be > 0"]),
    "resume-one-process-run": (on_run(lambda run: ["train", "--devices", "2", "--resume", str(run), "--no-progress"]),
                               ["1 process(es)", "--devices 1"]),
    "folder-in-use": (on_run(lambda run: ["train", *CASE_TINY, "--devices", "2", "--overwrite", "--out", str(run)],
                             _lock_held), ["in use", "process 1"]),
}


@pytest.mark.parametrize("name", LAUNCHER_CASES)
def test_refusals_come_from_the_launcher_once(name, tmp_path, good_run, capsys, monkeypatch):
    def no_launch(*args):
        raise AssertionError("processes were started")

    monkeypatch.setattr(cli.train, "launch", no_launch)
    assert_refused(LAUNCHER_CASES[name], tmp_path, good_run, capsys)


def test_a_refusal_in_the_processes_is_printed_once(tmp_path, capsys):
    """Each process hands its one-line error to the launcher, which prints every distinct one once."""
    monkeypatch_env = {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "0", "MASTER_ADDR": "x", "MASTER_PORT": "1",
                       distributed.LAUNCHER_ENV: str(tmp_path)}
    old = {k: os.environ.get(k) for k in monkeypatch_env}
    os.environ.update(monkeypatch_env)
    try:
        assert distributed.launched_by_us()
        assert cli._refuse("train", ValueError("the same\nproblem")) == 2
        os.environ["RANK"] = "1"
        assert cli._refuse("train", ValueError("the same problem")) == 2
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert capsys.readouterr().err == ""  # the processes print nothing themselves
    failures = {0: SimpleNamespace(exitcode=2), 1: SimpleNamespace(exitcode=2)}
    assert distributed._failed(failures, 2, str(tmp_path)) == distributed.Launch(2, ("the same problem",))


@pytest.mark.parametrize("codes, expected", [
    ({0: -signal.SIGTERM, 1: -signal.SIGKILL}, distributed.Launch(1, stopped="process 1 of 2 was killed by SIGKILL")),
    ({0: 1, 1: -signal.SIGKILL}, distributed.Launch(1, stopped="process 1 of 2 was killed by SIGKILL")),
    ({0: 1, 1: 3}, distributed.Launch(1, stopped="process 1 of 2 stopped with exit code 3")),
    ({0: 130, 1: 1}, distributed.Launch(130)),
])
def test_the_launcher_names_the_process_that_stopped(codes, expected, tmp_path):
    """The others fail on losing it (exit 1 after a gloo error, or the launcher's SIGTERM)."""
    failures = {rank: SimpleNamespace(exitcode=code) for rank, code in codes.items()}
    assert distributed._failed(failures, 2, str(tmp_path)) == expected


# -- Ctrl-C and a killed process under --devices 2 ----------------------------------------------------

def _start(*args):
    env = dict(os.environ, OMP_NUM_THREADS="1",
               PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    return subprocess.Popen([sys.executable, "-m", "pyro_gmvae", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for_epochs(proc, out, count, timeout=120.0):
    deadline = time.monotonic() + timeout
    while len(runs.read_metrics(out)) < count:
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no progress"
        time.sleep(0.05)


def _ranks(launcher):
    """The pids of the processes that torchrun started, by rank."""
    ranks = {}
    for pid in subprocess.run(["pgrep", "-P", str(launcher.pid)], capture_output=True, text=True).stdout.split():
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"RANK="):
                ranks[int(item[5:])] = int(pid)
    return ranks


def _assert_one_report(stderr, out, first_words):
    # the phase lines of rank 0 ("pyro-gmvae: training: ...") go to stderr, a log file too; then the one report
    lines = [line for line in stderr.splitlines() if line.strip() and not line.startswith("pyro-gmvae: ")]
    assert "Traceback" not in stderr and "Logging error" not in stderr and "terminate called" not in stderr, stderr
    assert len(lines) == 1 and lines[0].startswith(first_words), stderr
    assert lines[0].endswith(f"Resume with: pyro-gmvae train --devices 2 --resume {out}"), stderr


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["ctrl-c", "kill-9-rank-1", "kill-9-rank-0"])
def test_devices_stopped_says_how_to_resume_once(tmp_path, stop):
    """Ctrl-C (SIGINT to the launcher, as a terminal sends it) or kill -9 of one process: exit 130 (or 1), one
    line from the launcher, no traceback; the folder resumes with the command it names."""
    out = tmp_path / "run"
    proc = _start("--devices", "2", *TINY, "--epochs", "1000", "--out", str(out))
    _wait_for_epochs(proc, out, 1)
    if stop == "ctrl-c":
        proc.send_signal(signal.SIGINT)
    else:
        os.kill(_ranks(proc)[int(stop[-1])], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == (130 if stop == "ctrl-c" else 1), stderr
    _assert_one_report(stderr, out, "interrupted; the checkpoint" if stop == "ctrl-c" else
                       f"pyro-gmvae train: error: process {stop[-1]} of 2 was killed by SIGKILL")
    epoch = runs.load_checkpoint(out)["epoch"]
    assert not (out / runs.LOCK).exists() or stop == "kill-9-rank-0"  # a killed owner leaves its lock
    result = _train("--devices", "2", "--resume", str(out), "--epochs", str(epoch + 1), "--no-progress")
    assert result.returncode == 0, result.stderr[-3000:]
    assert [row["epoch"] for row in runs.read_metrics(out)] == list(range(1, epoch + 2))


def test_a_lost_process_is_told_from_other_errors():
    import torch.distributed as dist

    assert distributed.peer_lost(RuntimeError("[../gloo/transport/tcp/pair.cc:537] Read error [127.0.0.1]:37568: "
                                              "Connection reset by peer. This is typically caused by a remote worker"))
    assert distributed.peer_lost(dist.DistNetworkError("the store is gone"))
    assert not distributed.peer_lost(RuntimeError("mat1 and mat2 shapes cannot be multiplied"))
    assert not distributed.peer_lost(ValueError("gloo"))


def test_the_resume_hint_names_the_processes(tmp_path):
    from pyro_gmvae.cli.train import _resume_command

    out = tmp_path / "my run"
    assert _resume_command(out, distributed.World()) == f"pyro-gmvae train --resume '{out}'"
    assert _resume_command(out, devices=2) == f"pyro-gmvae train --devices 2 --resume '{out}'"
    # started by torchrun itself (not by --devices): torchrun again
    assert _resume_command(out, distributed.World(0, 3)) == f"torchrun --nproc-per-node 3 -m pyro_gmvae train " \
                                                            f"--resume '{out}'"
