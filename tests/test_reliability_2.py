"""Reliability, round two (issue 15): run folders have one owner at a time, ``--overwrite`` keeps the old
run until the new one has a checkpoint, ``--resume`` checks its data, every option is validated (NaN and
inf included), the Python API refuses what it cannot use, and I/O errors are one-line messages. Every
bad input fails with the library's own error, before anything is created, changed or lost."""

import errno
import json
import os
import random
import socket
import subprocess
import sys
import time

import numpy as np
import pyro
import pytest
import torch

from pyro_gmvae import (ModelConfig, TrainConfig, Trainer, build, cli, from_tensor, log_marginal_likelihood, predict,
                        responsibilities, runs)
from pyro_gmvae.data import load_dataset, write_idx
from pyro_gmvae.errors import ConfigError, DataError, GMVAEError
from pyro_gmvae.evaluation.responsibilities import _brute_force_marginals, _guide_at, cluster_marginals
from pyro_gmvae.inference import make_elbo
from cli_cases import TINY, assert_refused, copy_run, good_run, on_run, snapshot, train  # noqa: F401

def toy(model="vade", **kw):
    config = dict(model=model, data_dim=6, num_clusters=4, latent_dim=5, network="toy")
    return build(ModelConfig(**{**config, **kw}))


# -- the Python API ------------------------------------------------------------------------------------

def _vade():
    return toy()


API_CASES = {
    "responsibilities-1d": (lambda: responsibilities(*_vade(), torch.rand(6)), DataError, r"must be 2-D .*reshape"),
    "predict-1d": (lambda: predict(*_vade(), torch.rand(6)), DataError, "must be 2-D"),
    "log-likelihood-1d": (lambda: log_marginal_likelihood(*_vade(), torch.rand(6), 4), DataError, "must be 2-D"),
    "responsibilities-features": (lambda: responsibilities(*_vade(), torch.rand(3, 5)), DataError,
                                  "5 features but the model expects 6"),
    "responsibilities-empty": (lambda: responsibilities(*_vade(), torch.rand(0, 6)), DataError, "empty"),
    "responsibilities-batch-size-0": (lambda: responsibilities(*_vade(), torch.rand(3, 6), batch_size=0),
                                      ConfigError, "batch_size must be > 0"),
    "responsibilities-vae": (lambda: responsibilities(*toy("vae"), torch.rand(3, 6)), ConfigError,
                             "no cluster sites .*model='vade'"),
    "responsibilities-unknown-site": (lambda: responsibilities(*_vade(), torch.rand(3, 6), site="nope"),
                                      ConfigError, "unknown cluster site 'nope'; choose one of: cluster"),
    "responsibilities-list": (lambda: responsibilities(*_vade(), [[0.5] * 6]), DataError, "torch.as_tensor"),
    "log-likelihood-bernoulli-at-5": (lambda: log_marginal_likelihood(*_vade(), torch.full((2, 6), 5.0), 4),
                                      DataError, r"outside \[0, 1\] .*likelihood='normal'"),
    "log-likelihood-num-samples": (lambda: log_marginal_likelihood(*_vade(), torch.rand(2, 6), 2.5), ConfigError,
                                   "num_samples must be an integer"),
    "build-a-string": (lambda: build("vade"), ConfigError, r"build takes a ModelConfig, got str .*ModelConfig\("),
    "num-clusters-nan": (lambda: ModelConfig(num_clusters=float("nan")), ConfigError,
                         "num_clusters must be an integer, got nan"),
    "num-clusters-inf": (lambda: ModelConfig(num_clusters=float("inf")), ConfigError,
                         "num_clusters must be an integer, got inf"),
    "num-clusters-none": (lambda: ModelConfig(num_clusters=None), ConfigError,
                          "num_clusters must be an integer, got None"),
    "num-clusters-float": (lambda: ModelConfig(num_clusters=3.0), ConfigError,
                           "num_clusters must be an integer, got 3.0; pass 3"),
    "model-name-not-a-string": (lambda: ModelConfig(model=["vade"]), ConfigError, "model must be a name"),
    "jit-a-string": (lambda: TrainConfig(jit="no"), ConfigError,
                     r"jit must be True, False or None \(traced where safe\), got 'no'"),
    "lr-nan": (lambda: TrainConfig(lr=float("nan")), ConfigError, "lr must be finite"),
    "lr-huge": (lambda: TrainConfig(lr=1e20), ConfigError, "lr must be at most 1"),
    "min-lr-nan": (lambda: TrainConfig(min_lr=float("nan")), ConfigError, "min_lr must be finite"),
    "lr-decay-nan": (lambda: TrainConfig(lr_decay=float("nan")), ConfigError, "lr_decay must be finite"),
    "lr-decay-above-1": (lambda: TrainConfig(lr_decay=1.5), ConfigError, "lr_decay must be at most 1"),
    "adam-eps-nan": (lambda: TrainConfig(adam_eps=float("nan")), ConfigError, "adam_eps must be finite"),
    "pretrain-lr-inf": (lambda: TrainConfig(pretrain_lr=float("inf")), ConfigError, "pretrain_lr must be finite"),
    "free-bits-nan": (lambda: TrainConfig(free_bits=float("nan")), ConfigError, "free_bits must be finite"),
    "free-bits-inf": (lambda: TrainConfig(free_bits=float("inf")), ConfigError, "free_bits must be finite"),
    "seed-negative": (lambda: TrainConfig(seed=-1), ConfigError, "seed must be >= 0"),
    "seed-huge": (lambda: TrainConfig(seed=99999999999), ConfigError, "seed must be at most 4.29497e\\+09"),
    "epochs-string": (lambda: TrainConfig(epochs="3"), ConfigError, "epochs must be an integer, got '3'"),
    "from-dict-list": (lambda: TrainConfig.from_dict([1]), ConfigError, "takes a dict, got list"),
    "fit-a-tensor": (lambda: Trainer(*_vade(), TrainConfig(epochs=1, pretrain_epochs=0), progress=False
                                     ).fit(torch.rand(20, 6)), DataError, r"fit takes a Dataset, got Tensor.*from_tensor"),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_refuses_with_the_library_error(name):
    call, error, match = API_CASES[name]
    with pytest.raises(error, match=match) as info:
        call()
    assert isinstance(info.value, GMVAEError)


def test_api_accepts_float64_and_numpy_input():
    model, guide = _vade()
    x = torch.rand(5, 6)
    expected = responsibilities(model, guide, x)
    torch.testing.assert_close(responsibilities(model, guide, x.double()), expected)
    torch.testing.assert_close(responsibilities(model, guide, x.numpy()), expected)
    assert predict(model, guide, from_tensor(x.double())).shape == (5,)


def test_single_valued_enumerated_sites_are_summed_exactly(float64):
    """Pyro's contraction refuses a cluster site of one value; the brute-force table that replaces it
    agrees with compute_marginals where both work, and gives probability 1 where there is one value."""
    for kw in ({"model": "vade"}, {"model": "gmvae"}, {"model": "hierarchical", "num_super_clusters": 2}):
        model, guide = toy(**kw)
        x = torch.rand(3, 6)
        got = _brute_force_marginals(model, _guide_at(guide, x, True), x)
        for site, d in make_elbo().compute_marginals(model, _guide_at(guide, x, True), x).items():
            torch.testing.assert_close(got[site], d.probs.reshape(-1, 3, d.probs.shape[-1])[-1], rtol=0, atol=1e-12)
    model, guide = toy("hierarchical", num_super_clusters=1)
    marginals = cluster_marginals(model, guide, torch.rand(3, 6))
    assert torch.equal(marginals["super_cluster"], torch.ones(3, 1))
    torch.testing.assert_close(marginals["cluster"].sum(-1), torch.ones(3))
    model, guide = toy(num_clusters=1)
    assert torch.equal(responsibilities(model, guide, torch.rand(3, 6)), torch.ones(3, 1))


# -- the command line: bad input gives one line, and nothing is created, changed or lost ------------

def _edit_json(path, edit):
    raw = json.loads(path.read_text())
    edit(raw)
    path.write_text(json.dumps(raw))


def _edit_checkpoint(run, edit):
    state = torch.load(run / runs.CHECKPOINT, weights_only=False)
    edit(state)
    torch.save(state, run / runs.CHECKPOINT)


def _npy(tmp_path, array, name="data.npy"):
    path = tmp_path / name
    np.save(path, array)
    return path


def custom(make):
    return lambda tmp_path, good_run: make(tmp_path, good_run)


def _mnist_sizes(tmp_path):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, n, side in (("train", 6, 28), ("t10k", 4, 20)):
        write_idx(folder / f"{stem}-images-idx3-ubyte", rng.integers(0, 256, (n, side, side), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte", rng.integers(0, 10, n, dtype=np.uint8))
    return ["train", "--dataset", "mnist", "--data-dir", str(folder), "--network", "toy", "--epochs", "1",
            "--no-progress"], None


def _object_npz(tmp_path):
    np.savez(tmp_path / "obj.npz", x=np.array([[1.0, 2.0], [3.0]], dtype=object))
    return ["train", "--dataset", "file", "--data-path", str(tmp_path / "obj.npz"), "--no-progress"], None


def _file_as_folder(tmp_path, argv):
    (tmp_path / "f").write_text("a file")
    return argv(tmp_path / "f"), tmp_path


CLI_CASES = {
    # 4. every float option finite and in range
    "lr-nan": (train("--lr", "nan"), ["lr must be finite, got nan"]),
    "lr-inf": (train("--lr", "inf"), ["lr must be finite, got inf"]),
    "lr-huge": (train("--lr", "1e20"), ["lr must be at most 1", "smaller"]),
    "adam-eps-nan": (train("--adam-eps", "nan"), ["--adam-eps must be finite"]),
    "pretrain-lr-nan": (train("--pretrain-lr", "nan"), ["--pretrain-lr must be finite"]),
    "min-lr-nan": (train("--min-lr", "nan"), ["--min-lr must be finite"]),
    "min-lr-negative": (train("--min-lr", "-1"), ["--min-lr must be >= 0"]),
    "lr-decay-nan": (train("--lr-decay", "nan"), ["--lr-decay must be finite"]),
    "lr-decay-above-1": (train("--lr-decay", "2"), ["--lr-decay must be at most 1"]),
    "free-bits-nan": (train("--free-bits", "nan"), ["--free-bits must be finite"]),
    "free-bits-inf": (train("--free-bits", "inf"), ["--free-bits must be finite"]),
    # 7. other tracebacks
    "seed-negative": (train("--seed", "-1"), ["seed must be >= 0"]),
    "seed-huge": (train("--seed", "99999999999"), ["seed must be at most"]),
    "device-mps": (train("--device", "mps"), ["'mps' is not supported", "--device cpu"]),
    "device-meta": (train("--device", "meta"), ["'meta' is not supported"]),
    "latent-dim-huge": (train("--latent-dim", "100000000"), ["training needs about", "GiB", "lower --latent-dim"]),
    "idx-sizes-differ": (custom(lambda d, g: _mnist_sizes(d)), ["holds images of 20x20 pixels", "--split train"]),
    "npz-object-array": (custom(lambda d, g: _object_npz(d)), ["could not read the arrays", "np.savez"]),
    "config-wrong-type": (on_run(lambda run: ["train", "--resume", str(run)],
                                 lambda run: _edit_json(run / runs.CONFIG, lambda c: c["model"].update(
                                     num_clusters="3"))), ["num_clusters must be an integer, got '3'"]),
    "config-data-a-list": (on_run(lambda run: ["train", "--resume", str(run)],
                                  lambda run: _edit_json(run / runs.CONFIG, lambda c: c.update(data=["synthetic"]))),
                           ["the data section must be a dict"]),
    "config-data-unknown-key": (on_run(lambda run: ["train", "--resume", str(run)],
                                       lambda run: _edit_json(run / runs.CONFIG, lambda c: c["data"].update(
                                           colour="red"))), ["unknown data settings ['colour']"]),
    "config-data-dir-a-number": (on_run(lambda run: ["evaluate", str(run)],
                                        lambda run: _edit_json(run / runs.CONFIG, lambda c: c["data"].update(
                                            data_path=5))), ["data_path must be a string, got 5"]),
    "checkpoint-without-rng": (on_run(lambda run: ["train", "--resume", str(run), "--epochs", "2"],
                                      lambda run: _edit_checkpoint(run, lambda s: s.pop("rng"))),
                               ["cannot be resumed: rng (the random states) is missing", "--overwrite"]),
    "checkpoint-string-epoch": (on_run(lambda run: ["train", "--resume", str(run), "--epochs", "2"],
                                       lambda run: _edit_checkpoint(run, lambda s: s.update(epoch="1"))),
                                ["epoch '1' is not a count of epochs"]),
    "checkpoint-metrics-not-rows": (on_run(lambda run: ["train", "--resume", str(run), "--epochs", "2"],
                                           lambda run: _edit_checkpoint(run, lambda s: s.update(metrics=3))),
                                    ["metrics is not a list of rows"]),
    "config-train-wrong-type": (on_run(lambda run: ["evaluate", str(run)],
                                       lambda run: _edit_json(run / runs.CONFIG, lambda c: c["train"].update(
                                           lr="0.1"))), ["lr must be a number, got '0.1'"]),
    "config-not-a-dict": (on_run(lambda run: ["sample", str(run)],
                                 lambda run: (run / runs.CONFIG).write_text("[1, 2]")), ["is corrupt"]),
    "plot-row-without-epoch": (on_run(lambda run: ["plot", str(run)],
                                      lambda run: (run / runs.METRICS).write_text('{"elbo": -3.0}\n')),
                               ["row 1 of", "has no epoch number", "fix or delete that line"]),
    "evaluate-device-meta": (on_run(lambda run: ["evaluate", str(run), "--device", "meta"]), ["is not supported"]),
    "sample-per-cluster-0": (on_run(lambda run: ["sample", str(run), "--per-cluster", "0"]),
                             ["--per-cluster must be > 0"]),
    "sample-out-txt": (on_run(lambda run: ["sample", str(run), "--out", str(run.parent / "s.txt")]),
                       ["s.txt does not end in a picture format", ".png"]),
    "sample-out-without-suffix": (on_run(lambda run: ["sample", str(run), "--out", str(run.parent / "pic")]),
                                  ["does not end in a picture format (no suffix)", "pic.png"]),
    # 6. --out through a file
    "out-under-a-file": (custom(lambda d, g: _file_as_folder(d, lambda f: ["train", *TINY, "--out", str(f / "sub")])),
                         ["is a file, not a folder"]),
    "sample-out-under-a-file": (on_run(lambda run: (run.parent.joinpath("f").write_text("x"),
                                                    ["sample", str(run), "--out", str(run.parent / "f" / "s.png")])[1]),
                                ["is a file, not a folder"]),
    # 8. misleading messages
    "evaluate-before-first-checkpoint": (on_run(lambda run: ["evaluate", str(run)],
                                                lambda run: (run / runs.CHECKPOINT).unlink()),
                                         ["stopped before its first checkpoint", "train --resume"]),
    "foreign-config": (custom(lambda d, g: ((d / "other").mkdir(), (d / "other" / "config.json").write_text('{"a": 1}'),
                                            (["train", *TINY, "--out", str(d / "other")], d))[-1]),
                       ["was not written by pyro-gmvae", "move the file away"]),
    "foreign-config-overwrite": (custom(lambda d, g: ((d / "other").mkdir(),
                                                      (d / "other" / "config.json").write_text("not json"),
                                                      (["train", *TINY, "--overwrite", "--out", str(d / "other")],
                                                       d))[-1]),
                                 ["was not written by pyro-gmvae"]),
    "data-dir-a-file": (custom(lambda d, g: ((d / "f").write_text("x"),
                                             (["train", "--dataset", "mnist", "--data-dir", str(d / "f")], None))[-1]),
                        ["--data-dir", "is a file, not a folder"]),
    "data-dir-with-digits": (custom(lambda d, g: (["train", "--dataset", "digits", "--data-dir", str(d)], None)),
                             ["--data-dir does not apply to --dataset digits"]),
    "data-path-with-synthetic": (train("--data-path", "x.npy"), ["--data-path does not apply to --dataset synthetic"]),
    "noise-dim-with-vade": (train("--model", "vade", "--noise-dim", "3"), ["--noise-dim does not apply to --model vade"]),
    "super-clusters-with-gmvae": (train("--model", "gmvae", "--num-super-clusters", "2"),
                                  ["--num-super-clusters does not apply to --model gmvae"]),
    "evaluate-too-many-samples": (on_run(lambda run: ["evaluate", str(run), "--num-samples", "1000000000"]),
                                  ["log-weights per batch", "lower --batch-size or --num-samples"]),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(name, tmp_path, good_run, capsys):
    assert_refused(CLI_CASES[name], tmp_path, good_run, capsys)


# -- 1. one owner per run folder ------------------------------------------------------------------

def _lock(folder, pid, host=None):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / runs.LOCK).write_text(json.dumps({"pid": pid, "host": host or socket.gethostname()}))


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


@pytest.mark.parametrize("owner", ["this-host", "other-host"])
def test_a_folder_in_use_is_refused_before_anything_is_written(owner, tmp_path, capsys):
    out = tmp_path / "out"
    _lock(out, os.getpid(), None if owner == "this-host" else "elsewhere.example")
    before = snapshot(tmp_path)
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    expected = (f"is in use: process {os.getpid()} is training into it" if owner == "this-host" else
                f"in use by pid {os.getpid()} on host elsewhere.example")
    assert len(err.splitlines()) == 1 and expected in err and "choose another --out" in err, err
    assert snapshot(tmp_path) == before


def test_a_stale_lock_is_reported_and_taken_over(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    pid = _dead_pid()
    _lock(run, pid)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert f"{runs.LOCK} was left by process {pid}, which no longer runs" in capsys.readouterr().out
    assert not (run / runs.LOCK).exists() and runs.load_checkpoint(run)["epoch"] == 2


def test_the_lock_is_held_for_the_run_and_released(tmp_path, monkeypatch):
    seen = []
    real = runs.save_checkpoint
    monkeypatch.setattr(runs.train, "save_checkpoint", lambda d, s: (seen.append(json.loads(
        (tmp_path / "out" / runs.LOCK).read_text())), real(d, s)))
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "out")]) == 0
    assert [(r["pid"], r["host"]) for r in seen] == [(os.getpid(), socket.gethostname())] * 2
    assert not (tmp_path / "out" / runs.LOCK).exists()


def test_a_live_owner_blocks_even_overwrite_and_a_dead_one_is_taken_over(tmp_path, good_run, capsys):
    """Another process owns the run (its pid, alive, in run.lock): --overwrite and --resume are refused
    before anything is written; once that process is gone, the lock is stale and a resume takes over."""
    run = copy_run(good_run, tmp_path)
    owner = subprocess.Popen(["sleep", "60"])
    try:
        _lock(run, owner.pid)
        before = snapshot(tmp_path)
        for argv in (["train", *TINY, "--overwrite", "--out", str(run)],
                     ["train", "--resume", str(run), "--epochs", "2", "--no-progress"]):
            assert cli.main(argv) == 2
            assert f"is in use: process {owner.pid} is training into it" in capsys.readouterr().err
            assert snapshot(tmp_path) == before
    finally:
        owner.kill()
        owner.wait()
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert f"left by process {owner.pid}, which no longer runs" in capsys.readouterr().out
    assert runs.load_checkpoint(run)["epoch"] == 2 and not (run / runs.LOCK).exists()


# -- 2. one cluster; --overwrite keeps the old run until the new one has a checkpoint --------------

@pytest.mark.parametrize("flags", [["--num-clusters", "1"], ["--model", "hierarchical", "--num-super-clusters", "1"]])
def test_one_cluster_trains(flags, tmp_path):
    out = tmp_path / "out"
    assert cli.main(["train", *TINY, *flags, "--out", str(out)]) == 0
    assert runs.load_checkpoint(out)["epoch"] == 1 and runs.read_metrics(out)[0]["num_active_clusters"] >= 1


def _failing_step(monkeypatch, error):
    def step(self, *args, **kwargs):
        raise error
    monkeypatch.setattr(Trainer, "_step", step)  # one optimiser step of the trainer


@pytest.mark.parametrize("error", [ValueError("boom"), KeyboardInterrupt()])
def test_overwrite_keeps_the_old_run_until_the_new_one_has_a_checkpoint(error, tmp_path, good_run, monkeypatch,
                                                                         capsys):
    run = copy_run(good_run, tmp_path)
    (run / "eval.json").write_text("{}")
    before = snapshot(tmp_path)
    _failing_step(monkeypatch, error)
    with pytest.raises(type(error)):
        runs.train_run(*_configs(num_clusters=4), load_dataset("synthetic", num_datapoints=200), run,
                       overwrite=True, progress=False)
    assert "the previous run in" in capsys.readouterr().out
    assert snapshot(tmp_path) == before  # the old run whole, no staging folder, no lock


def _configs(**model):
    model_config = ModelConfig(**{**dict(model="gmvae", data_dim=2, num_clusters=3, latent_dim=2, network="toy",
                                         likelihood="normal"), **model})
    return model_config, TrainConfig(epochs=1, batch_size=64, pretrain_epochs=0)


def test_overwrite_replaces_the_run_after_its_first_checkpoint(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    (run / "eval.json").write_text("{}")
    seen = []
    data = load_dataset("synthetic", num_datapoints=200)
    trainer = runs.train_run(*_configs(num_clusters=4), data, run, overwrite=True, progress=False,
                             log=seen.append)
    assert trainer.epoch == 1 and runs.read_config(run)[0].num_clusters == 4
    assert runs.load_checkpoint(run)["model"]["prior.loc_heads.weight"].shape[0] == 4 * 2
    assert sorted(p.name for p in run.iterdir()) == [runs.CHECKPOINT, runs.CONFIG, runs.METRICS]


# -- 3. resume checks its data --------------------------------------------------------------------

def _file_run(tmp_path):
    data = _npy(tmp_path, np.random.default_rng(0).normal(size=(60, 3)).astype(np.float32))
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "file", "--data-path", str(data), "--network", "toy", "--num-clusters", "3",
                     "--batch-size", "20", "--epochs", "1", "--pretrain-epochs", "0", "--no-progress",
                     "--out", str(out)]) == 0
    return data, out


def test_resume_refuses_other_data(tmp_path, capsys):
    data, run = _file_run(tmp_path)
    fingerprint = json.loads((run / runs.CONFIG).read_text())["data"]["fingerprint"]
    assert fingerprint["shape"] == [60, 3] and fingerprint["dtype"] == "float32" and len(fingerprint["sha256"]) == 64
    np.save(data, np.random.default_rng(1).normal(size=(60, 3)).astype(np.float32))  # same shape, other values
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "the data differ from those the run in" in err and "restore the original data" in err, err
    assert snapshot(tmp_path) == before
    assert cli.main(["evaluate", str(run), "--num-samples", "2"]) == 0  # evaluate warns, and goes on
    assert "pyro-gmvae evaluate: warning: the data differ from those the run" in capsys.readouterr().err


def test_resume_refuses_an_edited_data_section(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path, lambda r: _edit_json(r / runs.CONFIG, lambda c: c["data"].update(
        num_datapoints=150)))
    before = snapshot(tmp_path)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    assert "shape (150, 2)" in capsys.readouterr().err
    assert snapshot(tmp_path) == before


def test_a_run_without_fingerprint_resumes_with_a_note(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path, lambda r: _edit_json(r / runs.CONFIG, lambda c: c["data"].pop("fingerprint")))
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert "records no fingerprint of its training data" in capsys.readouterr().out
    assert runs.load_checkpoint(run)["epoch"] == 2


# -- 4. strict JSON; 10. the umask ---------------------------------------------------------------------

def test_run_files_are_strict_json_and_follow_the_umask(tmp_path, good_run):
    def strict(text):
        return json.loads(text, parse_constant=lambda c: pytest.fail(f"{c} in strict JSON"))
    strict((good_run / runs.CONFIG).read_text())
    for line in (good_run / runs.METRICS).read_text().splitlines():
        strict(line)
    with pytest.raises(ValueError):
        runs.write_json(tmp_path / "x.json", {"lr": float("nan")})
    assert not list(tmp_path.iterdir())
    for mask, mode in ((0o022, 0o644), (0o077, 0o600), (0o002, 0o664)):
        old = os.umask(mask)
        try:
            runs.write_json(tmp_path / "x.json", {"a": 1})
            runs.save_checkpoint(tmp_path, {"epoch": 0})
        finally:
            os.umask(old)
        assert (tmp_path / "x.json").stat().st_mode & 0o777 == mode
        assert (tmp_path / runs.CHECKPOINT).stat().st_mode & 0o777 == mode


# -- 6. I/O errors ----------------------------------------------------------------------------------

def test_a_full_disk_keeps_the_checkpoint_and_says_so(tmp_path, good_run, monkeypatch, capsys):
    run = copy_run(good_run, tmp_path)
    checkpoint = (run / runs.CHECKPOINT).read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    monkeypatch.setattr(torch, "save", full)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    lines = [line for line in capsys.readouterr().err.strip().splitlines()
             if ": warning: " not in line]  # the module's good run may warn of a collapse when trained here
    # the phase lines (a log file gets them once training begins: the data, training), then the error in one line
    assert [line[:30] for line in lines[:-1]] == ["pyro-gmvae: loading the data: ", "pyro-gmvae: training: epochs 2"]
    err = lines[-1]
    assert "No space left on device" in err and "free some space" in err, lines
    assert (run / runs.CHECKPOINT).read_bytes() == checkpoint
    assert not list(run.glob(".*.tmp")) and not (run / runs.LOCK).exists()


@pytest.fixture
def read_only(monkeypatch):
    """chmod a folder read-only; root writes anyway, so the check reads the mode bits there."""
    if os.geteuid() == 0:
        monkeypatch.setattr(runs.storage, "_is_writable", lambda p: bool(os.stat(p).st_mode & 0o200))
    folders = []

    def make(folder):
        folder.chmod(0o555)
        folders.append(folder)
        return folder
    yield make
    for folder in folders:
        folder.chmod(0o755)


@pytest.mark.parametrize("command", ["train", "resume", "evaluate", "sample", "plot"])
def test_a_read_only_folder_is_refused_before_any_work(command, tmp_path, good_run, read_only, monkeypatch, capsys):
    run = copy_run(good_run, tmp_path)
    from pyro_gmvae.evaluation import report
    monkeypatch.setattr(report, "estimate_log_likelihood", lambda *a, **k: pytest.fail("computed first"))
    argv = {"train": ["train", *TINY, "--out", str(tmp_path / "ro" / "new")],
            "resume": ["train", "--resume", str(run), "--epochs", "2", "--no-progress"],
            "evaluate": ["evaluate", str(run)], "sample": ["sample", str(run)], "plot": ["plot", str(run)]}[command]
    (tmp_path / "ro").mkdir()
    read_only(tmp_path / "ro")
    read_only(run)
    before = snapshot(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot write into" in err and "make it writable" in err, err
    assert snapshot(tmp_path) == before


# -- 7. a second Ctrl-C while the first is being reported -------------------------------------------

def test_a_second_ctrl_c_during_the_report_is_ignored(tmp_path, monkeypatch, capsys):
    import signal

    _failing_step(monkeypatch, KeyboardInterrupt())
    real = runs.load_checkpoint

    def interrupted_again(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)
    monkeypatch.setattr(cli.train, "load_checkpoint", interrupted_again)  # the report of the interrupt reads it
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "out")]) == 130
    assert "interrupted; the checkpoint of epoch 0 is saved" in capsys.readouterr().err


# -- 9. bad data leaves no folder behind ------------------------------------------------------------

@pytest.mark.parametrize("values", ["huge", "constant"])
def test_data_that_fail_in_pretraining_leave_nothing(values, tmp_path, capsys):
    x = np.random.default_rng(0).normal(size=(100, 4)) * 1e30 if values == "huge" else np.full((100, 4), 0.5)
    data = _npy(tmp_path, x)
    before = snapshot(tmp_path)
    code = cli.main(["train", "--dataset", "file", "--data-path", str(data), "--network", "toy", "--model", "vade",
                     "--num-clusters", "3", "--epochs", "1", "--pretrain-epochs", "2", "--no-progress",
                     "--out", str(tmp_path / "out" / "run")])
    assert code == 2, capsys.readouterr()
    assert "pyro-gmvae train: error: " in capsys.readouterr().err
    assert snapshot(tmp_path) == before  # neither out/ nor out/run/


def test_a_failure_before_the_first_checkpoint_removes_only_the_runs_files(tmp_path, monkeypatch):
    from pyro_gmvae.errors import TrainingError

    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(Trainer, "pretrain", lambda self, data: (_ for _ in ()).throw(TrainingError("no")))
    model_config, train_config = _configs(model="vade")
    with pytest.raises(TrainingError):
        runs.train_run(model_config, TrainConfig(epochs=1, batch_size=64, pretrain_epochs=1),
                       load_dataset("synthetic", num_datapoints=200), out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


# -- the fuzz test: random option values end in success or a library error, never a traceback ----------

FUZZ_OPTIONS = {
    "--model": ["vade", "gmvae", "vae", "hierarchical", "nope"],
    "--num-clusters": ["1", "2", "3", "0", "-2"],
    "--latent-dim": ["1", "2", "0"],
    "--batch-size": ["1", "64", "500", "0"],
    "--epochs": ["0", "1", "-1"],
    "--lr": ["1e-3", "0.5", "nan", "inf", "-1", "0", "1e20"],
    "--lr-decay": ["0.5", "1", "nan", "0"],
    "--min-lr": ["0", "1e-4", "nan", "-1"],
    "--adam-eps": ["1e-8", "nan", "0"],
    "--num-particles": ["1", "2", "0"],
    "--free-bits": ["0", "0.5", "nan", "inf", "-1"],
    "--free-bits-group": ["site", "dim", "nope"],
    "--seed": ["0", "7", "-1", "99999999999"],
    "--guide": ["diagonal", "lowrank", "nope"],
    "--likelihood": ["normal", "bernoulli"],
    "--device": ["cpu", "meta", "mps"],
    "--num-datapoints": ["2", "50", "0"],
}


def test_fuzz_random_options_end_in_success_or_a_library_error(tmp_path, capsys):
    rng = random.Random(15)
    start, outcomes = time.monotonic(), []
    for i in range(60):
        if time.monotonic() - start > 15:
            break
        chosen = rng.sample(sorted(FUZZ_OPTIONS), rng.randint(1, 5))
        argv = ["train", "--dataset", "synthetic", "--num-datapoints", "50", "--network", "toy", "--epochs", "1",
                "--pretrain-epochs", "0", "--no-progress"]
        for flag in chosen:
            argv += [flag, rng.choice(FUZZ_OPTIONS[flag])]
        out = tmp_path / f"run{i}"
        pyro.clear_param_store()
        code = cli.main([*argv, "--out", str(out)])  # any other exception fails the test with its traceback
        err = capsys.readouterr().err
        assert code in (0, 2), (argv, err)
        if code == 2:
            assert "pyro-gmvae train: error: " in err and not out.exists(), (argv, err)
        else:
            assert runs.load_checkpoint(out)["epoch"] >= 0 and not (out / runs.LOCK).exists()
            json.loads((out / runs.CONFIG).read_text(), parse_constant=lambda c: pytest.fail(c))
        outcomes.append(code)
    assert len(outcomes) >= 10 and 0 in outcomes and 2 in outcomes


def test_evaluate_shows_progress_when_asked(tmp_path, good_run, capsys):
    from pyro_gmvae.evaluation.report import evaluate_run

    run = copy_run(good_run, tmp_path)
    result = evaluate_run(run, num_samples=3, batch_size=50, progress=True)
    assert "refined IS, 3 samples" in capsys.readouterr().err  # the default estimator, is
    assert result["num_datapoints"] == 200
    json.loads((run / "eval.json").read_text(), parse_constant=lambda c: pytest.fail(c))


def test_a_nan_score_is_written_as_null(tmp_path):
    runs.rewrite_metrics(tmp_path, [{"epoch": 1, "elbo": -2.0, "nmi": float("nan"), "shares": [float("inf"), 0.5]}])
    row = json.loads((tmp_path / runs.METRICS).read_text(), parse_constant=lambda c: pytest.fail(c))
    assert row == {"epoch": 1, "elbo": -2.0, "nmi": None, "shares": [None, 0.5]}


def test_an_overwrite_killed_before_its_first_checkpoint_leaves_the_old_run_resumable(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    (run / runs.STAGING).mkdir()  # what SIGKILL leaves: the staged new run and the dead owner's lock
    (run / runs.STAGING / runs.CONFIG).write_text("{}")
    _lock(run, _dead_pid())
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert "which no longer runs" in capsys.readouterr().out
    assert runs.load_checkpoint(run)["epoch"] == 2
    assert sorted(p.name for p in run.iterdir()) == [runs.CHECKPOINT, runs.CONFIG, runs.METRICS]
