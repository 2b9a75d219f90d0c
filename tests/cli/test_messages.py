"""What the command line says: a misspelt flag gets the close one, a mistake is one line (not the usage),
the data hint names the flag, predict names the factor, warnings are one line, and a log file gets the phase
lines but no progress bars."""

import warnings

import numpy as np
import pytest

from cli_cases import TINY, snapshot
from pyro_gmvae import cli


def _one_error_line(capsys, command):
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pyro-gmvae {command}: error: "), lines
    return lines[0]


def test_a_misspelt_flag_gets_the_close_one(capsys):
    assert cli.main(["train", "--num-clsuters", "3"]) == 2
    line = _one_error_line(capsys, "train")
    assert "--num-clsuters" in line and line.endswith("did you mean --num-clusters?"), line
    assert cli.main(["evaluate", "run", "--num-smaples", "3"]) == 2  # each subcommand's own flags
    assert "did you mean --num-samples?" in _one_error_line(capsys, "evaluate")
    assert cli.main(["sample", "run", "--zzz"]) == 2  # nothing close: the help to read
    assert _one_error_line(capsys, "sample").endswith("unrecognized argument: --zzz; see pyro-gmvae sample --help")


@pytest.mark.parametrize("argv, words", [
    (["train", "--data", "x.npy"], "ambiguous option: --data could match --dataset, --data-dir, --data-path"),
    (["train", "--epochs", "x"], "invalid int value: 'x'"),
    (["predict", "run"], "the following arguments are required: --data"),
])
def test_a_mistake_on_the_command_line_is_one_line_without_the_usage(argv, words, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main(argv)
    assert exit_.value.code == 2
    line = _one_error_line(capsys, argv[0])
    assert words in line and line.endswith(f"see pyro-gmvae {argv[0]} --help"), line


def test_missing_mnist_names_the_flag_not_the_keyword(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    before = snapshot(tmp_path)
    assert cli.main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "empty"),
                     "--out", str(tmp_path / "run")]) == 2
    line = _one_error_line(capsys, "train")
    assert "pass --download" in line and "download=True" not in line, line
    assert snapshot(tmp_path) == before


def test_predict_on_raw_digits_names_the_factor(tmp_path, capsys):
    from sklearn.datasets import load_digits

    run = tmp_path / "run"
    assert cli.main(["train", "--dataset", "digits", "--network", "toy", "--epochs", "1", "--pretrain-epochs", "0",
                     "--num-clusters", "4", "--out", str(run), "--no-progress", "--threads", "1"]) == 0
    np.save(tmp_path / "raw.npy", load_digits().data[:10])  # pixels 0..16; the run was trained on 0..1
    capsys.readouterr()
    assert cli.main(["predict", str(run), "--data", str(tmp_path / "raw.npy")]) == 2
    line = _one_error_line(capsys, "predict")
    assert "range [0, 16]" in line and "trained on values in [0, 1]" in line
    assert "divide the values by 16," in line, line


def test_a_warning_is_one_line_without_the_source(capsys):
    with cli._one_line_warnings("train"):
        warnings.warn("epoch 3: only 1 of 4 clusters\n   are active", RuntimeWarning)
    assert capsys.readouterr().err == "pyro-gmvae train: warning: epoch 3: only 1 of 4 clusters are active\n"


def test_a_log_file_gets_the_phase_lines_and_no_progress_bars(tmp_path, capsys):
    """stderr is not a terminal here, as when redirected to a file: every phase says a line, no bar draws."""
    argv = [a for a in TINY if a != "--no-progress"]  # bars would be on, were stderr a terminal
    argv[argv.index("--pretrain-epochs") + 1] = "1"
    assert cli.main(["train", *argv, "--init", "gmm", "--init-warmup-epochs", "1", "--out", str(tmp_path / "r")]) == 0
    err = capsys.readouterr().err
    for phase in ("loading the data: dataset=synthetic", "pretraining the autoencoder: 1 epochs", "initialising the 3-component mixture",
                  "warm-up: 1 epochs", "training: epochs 1 to 1"):
        assert f"pyro-gmvae: {phase}" in err, err
    assert err.index("loading the data") < err.index("pretraining the autoencoder")
    assert "\r" not in err and "step/s" not in err and "it/s" not in err
