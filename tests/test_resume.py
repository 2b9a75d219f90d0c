"""Interrupted and resumed runs: a resumed run ends exactly where an uninterrupted one does,
whether it was stopped cleanly, killed with SIGKILL at any moment, or interrupted with Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyro
import pytest
import torch

from pyro_gmvae import cli, runs

REPO = Path(__file__).resolve().parents[1]
EPOCHS = 6

# VaDE with a short pretraining, so that a kill can also land before the first checkpoint;
# a decaying learning rate, so that the scheduler state must travel in the checkpoint too.
TINY = ["--model", "vade", "--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy",
        "--num-clusters", "3", "--batch-size", "64", "--pretrain-epochs", "2", "--lr-decay", "0.5",
        "--lr-decay-every", "2", "--min-lr", "1e-4", "--no-progress"]


def train(*args):
    pyro.clear_param_store()
    assert cli.main(["train", *TINY, *args]) == 0


def resume(run_dir, *args):
    pyro.clear_param_store()
    assert cli.main(["train", "--resume", str(run_dir), "--no-progress", *args]) == 0


def metrics(run_dir):
    return [{k: v for k, v in row.items() if k != "seconds"} for row in runs.read_metrics(run_dir)]


def assert_same_run(a, b, atol=0.0):
    """Same parameters (bit for bit by default) and the same metrics rows, except wall time."""
    sa, sb = runs.load_checkpoint(a), runs.load_checkpoint(b)
    assert sa["epoch"] == sb["epoch"]
    for part in ("model", "guide"):
        assert sa[part].keys() == sb[part].keys()
        for name, value in sa[part].items():
            if atol:
                torch.testing.assert_close(sb[part][name], value, rtol=0, atol=atol, msg=f"{part}.{name}")
            else:
                assert torch.equal(sb[part][name], value), f"{part}.{name} differs"
    assert metrics(a) == metrics(b)


def assert_intact(run_dir):
    """A loadable checkpoint; a metrics file whose every line parses, epochs 1.. consecutive,
    lagging the checkpoint by at most one epoch."""
    state = runs.load_checkpoint(run_dir)
    lines = (Path(run_dir) / runs.METRICS).read_text().splitlines() if (Path(run_dir) / runs.METRICS).exists() else []
    rows = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in rows] == list(range(1, len(rows) + 1))
    assert state["epoch"] - 1 <= len(rows) <= state["epoch"]
    return state


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """An uninterrupted run."""
    out = tmp_path_factory.mktemp("reference") / "run"
    train("--epochs", str(EPOCHS), "--out", str(out))
    return out


def test_resume_in_process_is_exact(reference, tmp_path):
    out = tmp_path / "run"
    train("--epochs", "2", "--out", str(out))
    resume(out, "--epochs", "4")       # --resume RUN_DIR
    pyro.clear_param_store()
    assert cli.main(["train", "--resume", "--out", str(out), "--epochs", str(EPOCHS), "--no-progress"]) == 0
    assert_same_run(reference, out)
    assert runs.read_config(out)[1].epochs == EPOCHS


def test_resume_from_the_first_checkpoint_is_exact(reference, tmp_path):
    """Stopped right after pretraining: no stale pretraining gradient may leak into the first step."""
    out = tmp_path / "run"
    train("--epochs", "0", "--out", str(out))
    resume(out, "--epochs", str(EPOCHS))
    assert_same_run(reference, out)


def test_missing_last_metrics_row_is_restored(reference, tmp_path):
    """Killed between the checkpoint of an epoch and its metrics row: the row comes back on resume."""
    out = tmp_path / "run"
    train("--epochs", "3", "--out", str(out))
    rows = runs.read_metrics(out)
    runs.rewrite_metrics(out, rows[:-1])
    (out / f".{runs.CHECKPOINT}.12345.tmp").write_bytes(b"half a checkpoint")
    resume(out, "--epochs", str(EPOCHS))
    assert_same_run(reference, out)
    assert not list(out.glob(".*.tmp"))


def test_same_seed_same_run(reference, tmp_path):
    """Same seed, same device: the same parameters and metrics, bit for bit (the reference ran
    earlier in this process, so nothing may leak from one run into the next either)."""
    again, other = tmp_path / "again", tmp_path / "other"
    train("--epochs", str(EPOCHS), "--out", str(again))
    assert_same_run(reference, again)
    assert all("num_active_clusters" in row for row in runs.read_metrics(again))
    train("--epochs", "1", "--out", str(other), "--seed", "1")
    assert metrics(other)[0] != metrics(reference)[0]


def _spawn(args):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    # a child inherits an ignored SIGINT from the test process (Python then installs no KeyboardInterrupt):
    # start it as a shell would, with the default disposition
    return subprocess.Popen([sys.executable, "-m", "pyro_gmvae", "train", *args], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for(proc, ready, timeout=60.0):
    """Poll until ``ready()`` holds (True) or the process ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ready():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.005)
    proc.kill()
    raise AssertionError("the training process made no progress")


def _num_rows(out):
    return lambda: len(runs.read_metrics(out))


# One run killed three times in a row, each time after a small extra delay so that the kill lands
# mid-epoch or mid-write rather than on the same instruction: before its first checkpoint (config.json
# written, pretraining under way), then, resumed, in its first epochs, then, resumed again, later.
KILL_POINTS = [
    ("pretraining", TINY, lambda out: (out / runs.CONFIG).exists(), 0.0),
    ("epoch 1", ["--resume", "--no-progress"], lambda out: len(runs.read_metrics(out)) >= 1, 0.013),
    ("epoch 3", ["--resume", "--no-progress"], lambda out: len(runs.read_metrics(out)) >= 3, 0.004),
]


def test_sigkill_at_any_moment_leaves_a_resumable_run(reference, tmp_path):
    out = tmp_path / "run"
    for name, flags, ready, delay in KILL_POINTS:
        proc = _spawn([*flags, "--epochs", str(EPOCHS), "--out", str(out)])
        _wait_for(proc, lambda ready=ready: ready(out))
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        _, stderr = proc.communicate()
        assert proc.returncode == -signal.SIGKILL, f"{name}: the run ended before it was killed: {stderr}"
        if (out / runs.CHECKPOINT).exists():
            assert_intact(out)
        else:  # killed before the first checkpoint: only the config, and --resume starts it over
            assert (out / runs.CONFIG).exists() and not runs.read_metrics(out), name
    resume(out)
    assert_same_run(reference, out)
    assert not list(out.glob(".*.tmp"))


def test_ctrl_c_saves_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    proc = _spawn([*TINY, "--epochs", "10000", "--out", str(out)])
    assert _wait_for(proc, _num_rows(out)), proc.communicate()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert f"Resume with: pyro-gmvae train --resume {out}" in stderr
    state = assert_intact(out)
    assert state["epoch"] >= 1
    assert "Traceback" not in stderr


def test_checkpoint_with_pyro_optim_state_resumes():
    """A checkpoint written before the torch optimiser (issue 12) holds pyro.optim's get_state(): one Adam
    and one LambdaLR per parameter, keyed by Pyro's names. It loads into the one torch Adam, moments and
    learning rate intact, and training goes on; a state that names other parameters is refused."""
    from pyro.infer import SVI

    from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor, make_elbo
    from pyro_gmvae.errors import CheckpointError
    from pyro_gmvae.inference.training import step_decay

    train = TrainConfig(epochs=2, batch_size=10, pretrain_epochs=0, lr_decay=0.5, lr_decay_every=1)
    x = torch.rand(20, 6)
    model, guide = build(ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy"))
    optim = pyro.optim.LambdaLR({"optimizer": torch.optim.Adam, "optim_args": {"lr": train.lr, "eps": train.adam_eps},
                                 "lr_lambda": step_decay(train)})
    svi = SVI(model, guide, optim, make_elbo())
    for _ in range(2):
        svi.step(x)
    optim.step()  # the schedule, at the end of epoch 1
    old = {k.replace("$$$", "."): v for k, v in optim.get_state().items()}
    trainer = Trainer(model, guide, train, progress=False)
    state = {**trainer.state_dict(), "epoch": 1, "optim": optim.get_state()}
    del state["world_size"]  # as old checkpoints: no such key
    trainer.load_state_dict(state)
    named = [(n, p) for m in (model, guide) for n, p in m.named_parameters()]
    assert {n for n, _ in named} == set(old)
    for name, p in named:
        for key in ("exp_avg", "exp_avg_sq", "step"):
            assert torch.equal(trainer.optim.state[p][key], old[name]["optimizer"]["state"][0][key]), name
    assert trainer._lr() == train.lr * 0.5
    assert [row["epoch"] for row in trainer.fit(from_tensor(x))] == [2]

    foreign = {"encoder$$$nope.weight": old[named[0][0]]}
    with pytest.raises(CheckpointError, match="optimiser state of the checkpoint cannot be read: it names "
                                              "parameters this model does not have"):
        Trainer(model, guide, train, progress=False).load_state_dict({**state, "optim": foreign})
