"""``pyro-gmvae train`` writes config.json, metrics.jsonl and checkpoint.pt with the documented fields."""

import json
import subprocess
import sys

import pytest

from pyro_gmvae import ModelConfig, TrainConfig
from pyro_gmvae.cli import build_parser, main
from pyro_gmvae.runs import load_checkpoint


@pytest.mark.parametrize("extra", [[], ["--model", "gmvae", "--free-bits", "0.5", "--num-particles", "2"],
                                   ["--model", "vae", "--jit"], ["--model", "gmvae", "--jit", "--free-bits", "0.5"]])
def test_train_writes_the_three_files(tmp_path, extra):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic", "--num-datapoints", "300", "--epochs", "2", "--pretrain-epochs", "1",
            "--batch-size", "100", "--out", str(out), "--no-progress", *extra]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    ModelConfig.from_dict(config["model"]), TrainConfig.from_dict(config["train"])  # rebuildable
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2]
    has_clusters = "vae" not in extra
    for row in rows:
        cluster_fields = {"acc", "nmi", "ari", "num_active_clusters"}
        fields = {"epoch", "elbo", "seconds"} | (cluster_fields if has_clusters else set())
        assert fields <= set(row), row
    if "--free-bits" in extra:  # elbo = objective + the constraint's correction (>= 0)
        assert "free_bits_kl" in rows[-1] and rows[-1]["elbo"] >= rows[-1]["objective"]
    assert load_checkpoint(out)["epoch"] == 2


def test_help_documents_every_flag():
    text = build_parser()._subparsers._group_actions[0].choices["train"].format_help()
    for flag in ["--model", "--dataset", "--data-dir", "--num-clusters", "--latent-dim", "--epochs", "--batch-size",
                 "--lr", "--num-particles", "--prior", "--guide", "--jit", "--device", "--seed", "--out",
                 "--free-bits", "--free-bits-site", "--preset", "--pretrained"]:
        assert flag in text


def test_console_script_entry_point(tmp_path):
    result = subprocess.run([sys.executable, "-m", "pyro_gmvae", "train", "--help"], capture_output=True, text=True)
    assert result.returncode == 0 and "--num-clusters" in result.stdout


def test_pretrained_weights_are_cached_and_reused(tmp_path):
    import torch

    base = ["train", "--dataset", "synthetic", "--num-datapoints", "300", "--batch-size", "100", "--no-progress"]
    first, second = tmp_path / "first", tmp_path / "second"
    assert main([*base, "--epochs", "1", "--pretrain-epochs", "2", "--out", str(first)]) == 0
    cached = torch.load(first / "pretrained.pt", weights_only=False)
    assert cached["pretrain_report"]["pretrain_epochs"] == 2 and "gmm_log_likelihood" in cached["pretrain_report"]
    reuse = ["--epochs", "0", "--pretrain-epochs", "2", "--pretrained", str(first), "--out", str(second)]
    assert main([*base, *reuse]) == 0
    start = load_checkpoint(second)  # epoch 0: the state training starts from
    assert start["pretrain_report"]["pretrained_from"] == str(first)
    for key, value in cached["model"].items():
        assert torch.equal(start["model"][key], value), key
