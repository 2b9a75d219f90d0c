"""Files derived from a checkpoint go with it (issue 23): ``--resume`` and ``--overwrite`` remove the old
eval.json, labels.csv and PNGs once the checkpoint they came from is replaced; a run fitted in Python says
it cannot be resumed or plotted from the command line, before anything is written; the lock and the
folders of a failed run do not linger."""

import json
import os

import numpy as np
import pytest

from pyro_gmvae import GMVAEClusterer, cli, runs
from cli_cases import TINY, copy_run, good_run, snapshot  # noqa: F401

DERIVED = ("eval.json", "labels.csv", "samples.png", "curves.png", "latent.png")


def _derive(run):
    for name in DERIVED:
        (run / name).write_text("from the old checkpoint")


def test_resume_removes_what_the_old_checkpoint_gave_once_it_is_replaced(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    _derive(run)
    (run / "mine.csv").write_text("not the run's")
    assert cli.main(["train", "--resume", str(run), "--epochs", "1", "--no-progress"]) == 0  # nothing to train
    assert all((run / name).exists() for name in DERIVED)  # the checkpoint is the same: they still describe it
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert not any((run / name).exists() for name in DERIVED) and (run / "mine.csv").exists()


def test_overwrite_removes_what_the_old_model_gave(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    _derive(run)
    assert cli.main(["train", "--model", "gmvae", *TINY, "--seed", "3", "--overwrite", "--out", str(run)]) == 0
    assert not any((run / name).exists() for name in DERIVED)


@pytest.fixture(scope="module")
def fitted_run(tmp_path_factory):
    x = np.random.default_rng(0).normal(size=(90, 2)).astype(np.float32)
    folder = tmp_path_factory.mktemp("fitted") / "run"
    GMVAEClusterer(num_clusters=2, network="toy", epochs=1, pretrain_epochs=0, batch_size=30,
                   progress=False).fit(x).save(folder)
    return folder


@pytest.mark.parametrize("argv", [["train", "--resume", "RUN", "--epochs", "2", "--no-progress"], ["plot", "RUN"],
                                  ["evaluate", "RUN", "--num-samples", "4"]])
def test_a_run_fitted_in_python_says_the_command_line_cannot_load_its_data(argv, tmp_path, fitted_run, capsys):
    run = copy_run(fitted_run, tmp_path)
    before = snapshot(run)
    assert cli.main([str(run) if a == "RUN" else a for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "in-memory data" in err, err
    assert "unknown dataset" not in err and snapshot(run) == before  # no curves.png written before the failure


def test_a_symlinked_lock_is_named_not_retried(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    os.symlink(tmp_path / "nowhere", run / runs.LOCK)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is a symbolic link" in err and "keeps coming back" not in err
    assert os.path.islink(run / runs.LOCK)  # someone else's: left alone


def test_a_name_too_long_leaves_no_empty_parent(tmp_path, capsys):
    out = tmp_path / "new" / "deeper" / ("x" * 300)
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "too long" in err.lower(), err
    assert not (tmp_path / "new").exists()


def test_eval_json_names_its_epoch(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    assert cli.main(["evaluate", str(run), "--num-samples", "4"]) == 0
    assert json.loads((run / "eval.json").read_text())["epoch"] == 1


@pytest.mark.parametrize("name", ["config.json", "metrics.jsonl", "checkpoint.pt"])
@pytest.mark.parametrize("command", [["plot", "RUN"], ["evaluate", "RUN", "--num-samples", "4", "--no-save"]])
def test_a_fifo_in_place_of_a_run_file_is_refused_not_waited_on(name, command, tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    (run / name).unlink()
    os.mkfifo(run / name)
    assert cli.main([str(run) if a == "RUN" else a for a in command]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{name} is not a regular file" in err, err
