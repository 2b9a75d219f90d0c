"""``pyro-gmvae train`` writes config.json, metrics.jsonl and checkpoint.pt with the documented fields."""

import io
import json
import re
import subprocess
import sys

import pytest

from cli_cases import assert_refused, good_run, train  # noqa: F401
from pyro_gmvae import ModelConfig, TrainConfig
from pyro_gmvae.cli import build_parser, main
from pyro_gmvae.runs import load_checkpoint


@pytest.mark.parametrize("extra", [[], ["--model", "gmvae", "--free-bits", "0.5", "--num-particles", "2"],
                                   ["--model", "vae", "--jit"], ["--model", "gmvae", "--jit", "--free-bits", "0.5"],
                                   ["--no-jit"]])
def test_train_writes_the_three_files(tmp_path, extra):
    out = tmp_path / "run"
    argv = ["train", "--dataset", "synthetic", "--num-datapoints", "300", "--epochs", "2", "--pretrain-epochs", "1",
            "--batch-size", "100", "--out", str(out), "--no-progress", *extra]
    assert main(argv) == 0
    config = json.loads((out / "config.json").read_text())
    ModelConfig.from_dict(config["model"]), TrainConfig.from_dict(config["train"])  # rebuildable
    assert config["train"]["jit"] == (True if "--jit" in extra else False if "--no-jit" in extra else None)
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


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("no_progress", [True, False])
def test_no_progress_hides_the_bars_only(tmp_path, monkeypatch, capsys, no_progress):
    """At a terminal the phase lines stay with --no-progress; the bars (tqdm's "step" units) go."""
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    argv = ["train", "--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--epochs", "1",
            "--pretrain-epochs", "1", "--batch-size", "100", "--out", str(tmp_path / "run")]
    assert main([*argv, *(["--no-progress"] if no_progress else [])]) == 0
    text = terminal.getvalue()
    for phase in ("pyro-gmvae: loading the data: dataset=synthetic", "pyro-gmvae: pretraining", "pyro-gmvae: training"):
        assert phase in text, text
    assert ("step/s" in text or "steps/s" in text or "s/step" in text) != no_progress, text


def test_train_ends_on_a_one_line_summary(tmp_path, capsys):
    """The last line is for a person (acc, NMI, ARI with labels, clusters used of K, wall time); the numbers
    are those of the last metrics row, and the JSON stays in the files."""
    out = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--epochs", "2",
                 "--pretrain-epochs", "1", "--batch-size", "100", "--num-clusters", "4", "--out", str(out),
                 "--no-progress"]) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert len(printed) == 1
    assert re.fullmatch(rf"pyro-gmvae: trained {re.escape(str(out))}: vade, epoch 2 of 2; "
                        rf"acc {row['acc']:.3f}, NMI {row['nmi']:.3f}, ARI {row['ari']:.3f}; "
                        rf"{row['num_used_clusters']} of 4 clusters used; [0-9.]+ s", printed[0]), printed


def test_summary_without_labels_gives_the_elbo(tmp_path, capsys):
    import numpy as np

    data = tmp_path / "x.npy"
    np.save(data, np.random.default_rng(0).random((60, 5)).astype("float32"))
    out = tmp_path / "run"
    assert main(["train", "--model", "vae", "--dataset", "file", "--data-path", str(data), "--network", "toy",
                 "--epochs", "1", "--batch-size", "30", "--out", str(out), "--no-progress"]) == 0
    line = capsys.readouterr().out.strip()
    row = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    assert f"vae, epoch 1 of 1; ELBO {row['elbo']:.2f} nats; " in line and "acc" not in line, line


def test_threads_are_bounded(tmp_path, good_run, capsys):
    """Tens of thousands of threads crash OpenMP (segfault, "Thread creation failed"): refused first."""
    import os

    for n in (100000, 20000, 4 * (os.cpu_count() or 1) + 1):
        assert_refused((train("--threads", str(n)), [f"--threads {n}", "per CPU core", "pass --threads"]),
                       tmp_path, good_run, capsys)


def test_a_vae_run_suggests_no_command_that_needs_clusters(tmp_path, capsys):
    from pyro_gmvae.cli import main

    out = tmp_path / "vae"
    assert main(["train", "--model", "vae", "--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy",
                 "--epochs", "1", "--out", str(out), "--no-progress", "--threads", "1"]) == 0
    err = capsys.readouterr().err
    assert f"pyro-gmvae evaluate {out}" in err and f"pyro-gmvae plot {out}" in err
    assert "pyro-gmvae sample" not in err and "pyro-gmvae predict" not in err
