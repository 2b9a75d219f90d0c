"""Reliability, round two (issue 15): run folders have one owner at a time, ``--overwrite`` keeps the old
run until the new one has a checkpoint, ``--resume`` checks its data, every option is validated (NaN and
inf included), the Python API refuses what it cannot use, and I/O errors are one-line messages. Every
bad input fails with the library's own error, before anything is created, changed or lost."""

import errno
import json
import math
import os
import random
import shutil
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
from pyro_gmvae.errors import (CheckpointError, ConfigError, DataError, DeviceError, GMVAEError, StorageError)
from pyro_gmvae.evaluation.responsibilities import _brute_force_marginals, _guide_at, cluster_marginals
from pyro_gmvae.inference import make_elbo

TINY = ["--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--num-clusters", "3",
        "--batch-size", "64", "--epochs", "1", "--pretrain-epochs", "0", "--no-progress"]


def snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time (folders too: none may appear)."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


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
                                      ConfigError, "batch_size must be a positive integer"),
    "responsibilities-vae": (lambda: responsibilities(*toy("vae"), torch.rand(3, 6)), ConfigError,
                             "no cluster sites .*model='vade'"),
    "responsibilities-unknown-site": (lambda: responsibilities(*_vade(), torch.rand(3, 6), site="nope"),
                                      ConfigError, "unknown cluster site 'nope'; choose one of: cluster"),
    "responsibilities-list": (lambda: responsibilities(*_vade(), [[0.5] * 6]), DataError, "torch.as_tensor"),
    "log-likelihood-bernoulli-at-5": (lambda: log_marginal_likelihood(*_vade(), torch.full((2, 6), 5.0), 4),
                                      DataError, r"outside \[0, 1\] .*likelihood='normal'"),
    "log-likelihood-num-samples": (lambda: log_marginal_likelihood(*_vade(), torch.rand(2, 6), 2.5), ConfigError,
                                   "num_samples must be a positive integer"),
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
    "jit-a-string": (lambda: TrainConfig(jit="no"), ConfigError, "jit must be True or False, got 'no'"),
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

@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished one-epoch GMVAE run; each test works on a copy."""
    out = tmp_path_factory.mktemp("good") / "run"
    pyro.clear_param_store()
    assert cli.main(["train", "--model", "gmvae", *TINY, "--out", str(out)]) == 0
    return out


def _copy(good_run, tmp_path, edit=None):
    run = tmp_path / "existing"
    shutil.copytree(good_run, run)
    if edit is not None:
        edit(run)
    return run


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


def train(*args):
    return lambda tmp_path, good_run: (["train", *TINY, *args], None)


def on_run(make_argv, edit=None):
    def build_case(tmp_path, good_run):
        run = _copy(good_run, tmp_path, edit)
        return make_argv(run), run
    return build_case


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
    "adam-eps-nan": (train("--adam-eps", "nan"), ["adam_eps must be finite"]),
    "pretrain-lr-nan": (train("--pretrain-lr", "nan"), ["pretrain_lr must be finite"]),
    "min-lr-nan": (train("--min-lr", "nan"), ["min_lr must be finite"]),
    "min-lr-negative": (train("--min-lr", "-1"), ["min_lr must be >= 0"]),
    "lr-decay-nan": (train("--lr-decay", "nan"), ["lr_decay must be finite"]),
    "lr-decay-above-1": (train("--lr-decay", "2"), ["lr_decay must be at most 1"]),
    "free-bits-nan": (train("--free-bits", "nan"), ["free_bits must be finite"]),
    "free-bits-inf": (train("--free-bits", "inf"), ["free_bits must be finite"]),
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
    make, words = CLI_CASES[name]
    argv, kept = make(tmp_path, good_run)
    out = tmp_path / "out"
    if kept is None:
        argv = [*argv, "--out", str(out)]
    before = snapshot(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pyro-gmvae {argv[0]}: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()
    assert snapshot(tmp_path) == before  # nothing created or changed, the existing run included
