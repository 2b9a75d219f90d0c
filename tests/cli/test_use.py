"""The commands on a trained run (issue 23): ``predict --out`` cannot destroy the run, the input or a file it
was not asked to replace; ``--data`` is checked with its own name; data at another scale are refused with
the range the model was trained on; ``sample`` checks its size; ``plot`` refuses a garbage metrics file;
``evaluate --no-save`` writes nothing."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from pyro_gmvae import cli, runs
from cli_cases import TINY, assert_refused, copy_run, good_run, on_run, snapshot  # noqa: F401


def _data(run, name="new.npy", values=None):
    """A .npy beside the run: rows like the training data (2 features), or ``values``."""
    path = run.parent / name
    np.save(path, np.random.default_rng(0).normal(size=(7, 2)).astype(np.float32) if values is None else values)
    return path


def predict(*args, data=None, out="labels.csv", edit=None):
    """A predict case on a copy of the run; ``data(run)`` makes the --data file, ``out(run)`` the --out path."""
    def make_argv(run):
        data_path = _data(run) if data is None else data(run)
        argv = ["predict", str(run), "--data", str(data_path)]
        if out is not None:
            argv += ["--out", str(out(run) if callable(out) else run.parent / out)]
        return argv + list(args)
    return on_run(make_argv, edit)


def _fifo(run, name="fifo"):
    path = run.parent / name
    os.mkfifo(path)
    return path


def _file(run, name, text="x"):
    path = run.parent / name
    path.write_text(text)
    return path


def _link(run, target, name, hard=False):
    path = run.parent / name
    (os.link if hard else os.symlink)(target, path)
    return path


CASES = {
    # predict --out: never anything but a regular file of one's own
    "out-null-device": (predict(out=lambda run: "/dev/null"), ["/dev/null is not a regular file"]),
    "out-fifo": (predict(out=_fifo), ["fifo is not a regular file"]),
    "out-folder": (predict(out=lambda run: run.parent), ["is a folder", "labels.csv"]),
    "out-checkpoint": (predict(out=lambda run: run / "checkpoint.pt"), ["one of the run's own files"]),
    "out-checkpoint-overwrite": (predict("--overwrite", out=lambda run: run / "checkpoint.pt"),
                                 ["one of the run's own files"]),
    "out-config": (predict("--overwrite", out=lambda run: run / "config.json"), ["one of the run's own files"]),
    "out-metrics": (predict("--overwrite", out=lambda run: run / "metrics.jsonl"), ["one of the run's own files"]),
    "out-new-eval-json": (predict(out=lambda run: run / "eval.json"), ["would be one of the run's own files"]),
    "out-staging": (predict(out=lambda run: run / ".new-run" / "labels.csv"), ["would be one of the run's own"]),
    "out-hard-link-to-checkpoint": (predict("--overwrite", out=lambda run: _link(run, run / "checkpoint.pt", "h.csv",
                                                                               hard=True)),
                                    ["one of the run's own files"]),
    "out-symlink-to-config": (predict("--overwrite", out=lambda run: _link(run, run / "config.json", "s.csv")),
                              ["one of the run's own files"]),
    "out-dangling-symlink": (predict(out=lambda run: _link(run, run.parent / "nowhere", "d.csv")),
                             ["a symbolic link to nothing"]),
    "out-another-runs-checkpoint": (predict("--overwrite", edit=lambda run: __import__("shutil").copytree(
        run, run.parent / "other"), out=lambda run: run.parent / "other" / "checkpoint.pt"),
                                    ["is a file of the run in"]),
    "out-is-the-data": (predict("--overwrite", out=lambda run: run.parent / "new.npy"), ["is the --data file itself"]),
    "out-exists": (predict(out=lambda run: _file(run, "old.csv")), ["old.csv exists", "--overwrite"]),
    "out-default-exists": (predict(out=None, edit=lambda run: (run / "labels.csv").write_text("old")),
                           ["labels.csv exists", "--overwrite"]),
    "out-under-a-file": (predict(out=lambda run: _file(run, "a.csv") / "x.csv"),
                         ["a.csv is a file, not a folder", "whose folders are folders"]),
    # predict --data: named as --data, and what it is when it is not a file
    "data-folder": (predict(data=lambda run: run.parent), ["--data", "is a folder"]),
    "data-fifo": (predict(data=lambda run: _fifo(run, "in.npy")), ["--data", "is not a regular file"]),
    "data-missing": (predict(data=lambda run: run.parent / "nothing.npy"), ["--data", "does not exist"]),
    "data-csv": (predict(data=lambda run: _file(run, "new.csv", "1.0,2.0\n3.0,4.0\n")),
                 ["is not a .npy or .npz file", "text (a CSV?)", "np.loadtxt"]),
    "data-0d": (predict(data=lambda run: _data(run, "z.npy", np.float32(3.0))), ["got shape ()"]),
    "data-float64-beyond-float32": (predict(data=lambda run: _data(run, "big.npy", np.full((5, 2), 1e300))),
                                    ["10 values out of float32 range"]),
    "data-huge": (predict(data=lambda run: _data(run, "huge.npy", np.full((4, 2), 1e20, np.float32))),
                  ["range [1e+20, 1e+20]", "trained on values in [", "rescale"]),
    "data-other-scale": (predict(data=lambda run: _data(run, "s.npy", np.full((4, 2), -1e6, np.float32))),
                         ["trained on values in [", "rescale the data"]),
    "data-wide": (predict(data=lambda run: _data(run, "w.npy", np.zeros((3, 5), np.float32))),
                  ["has 5 features", "expecting 2"]),
    # sample: sizes checked before any work
    "sample-per-cluster-huge": (on_run(lambda run: ["sample", str(run), "--per-cluster", "100000000"]),
                                ["--per-cluster 100000000 needs about", "GiB", "lower --per-cluster"]),
    "sample-per-cluster-int64-max": (on_run(lambda run: ["sample", str(run), "--per-cluster", str(2 ** 63 - 1)]),
                                     ["needs about", "lower --per-cluster"]),
    "sample-per-cluster-negative": (on_run(lambda run: ["sample", str(run), "--per-cluster", "-3"]),
                                    ["--per-cluster must be > 0"]),
    # plot: a metrics file that is not rows
    "plot-garbage-metrics": (on_run(lambda run: ["plot", str(run)],
                                    lambda run: (run / "metrics.jsonl").write_bytes(b"\x00\xff garbage\nnot json\n")),
                             ["line 1 of", "is not a JSON row", "fix or delete that line"]),
    "plot-garbage-after-rows": (on_run(lambda run: ["plot", str(run)],
                                       lambda run: (run / "metrics.jsonl").write_text(
                                           (run / "metrics.jsonl").read_text() + "garbage\n{\"epoch\": 2}\n")),
                                ["line 2 of", "is not a JSON row"]),
}


@pytest.mark.parametrize("name", list(CASES))
def test_refused(name, tmp_path, good_run, capsys):
    assert_refused(CASES[name], tmp_path, good_run, capsys)


def test_predict_still_pretraining_says_so(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    (run / "checkpoint.pt").unlink()
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run / runs.LOCK).write_text(json.dumps({"pid": owner.pid, "host": os.uname().nodename}))
        assert cli.main(["predict", str(run), "--data", str(_data(run)), "--out", str(tmp_path / "l.csv")]) == 2
    finally:
        owner.kill()
        owner.wait()
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "is still training" in err and f"process {owner.pid}" in err, err
    assert "--resume" not in err and not (tmp_path / "l.csv").exists()


def _labels(path):
    return path.read_text().splitlines()


def test_predict_reads_big_endian_and_ignores_an_unused_bad_y(tmp_path, good_run):
    x = np.random.default_rng(1).normal(size=(9, 2)).astype(np.float32)
    np.save(tmp_path / "native.npy", x)
    np.save(tmp_path / "big.npy", x.astype(">f4"))
    np.savez(tmp_path / "bad-y.npz", x=x, y=np.arange(4))  # y of the wrong length: not used by predict
    outs = []
    for name in ("native.npy", "big.npy", "bad-y.npz"):
        out = tmp_path / f"{name}.csv"
        assert cli.main(["predict", str(good_run), "--data", str(tmp_path / name), "--out", str(out), "--proba"]) == 0
        outs.append(_labels(out))
    assert outs[0] == outs[1] == outs[2] and len(outs[0]) == 10


def test_predict_long_names_overwrite_and_write_errors(tmp_path, good_run, capsys):
    data = tmp_path / "new.npy"
    np.save(data, np.zeros((3, 2), np.float32))
    long = tmp_path / ("l" * 246 + ".csv")  # 250 characters: the temporary name must still fit in 255
    assert cli.main(["predict", str(good_run), "--data", str(data), "--out", str(long)]) == 0
    assert len(_labels(long)) == 4
    long.write_text("old\n")
    assert cli.main(["predict", str(good_run), "--data", str(data), "--out", str(long), "--overwrite"]) == 0
    assert len(_labels(long)) == 4
    capsys.readouterr()
    too_long = tmp_path / ("t" * 300 + ".csv")
    assert cli.main(["predict", str(good_run), "--data", str(data), "--out", str(too_long)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.count("cannot write") == 1 and "too long" in err, err
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_predict_removes_the_temporary_files_a_killed_predict_left(tmp_path, good_run):
    data = tmp_path / "new.npy"
    np.save(data, np.zeros((3, 2), np.float32))
    out = tmp_path / "labels.csv"
    stale, fresh = tmp_path / ".labels.csv.abcd1234.tmp", tmp_path / ".labels.csv.efgh5678.tmp"
    stale.write_text("half")
    fresh.write_text("being written")
    os.utime(stale, (time.time() - 3600, time.time() - 3600))
    assert cli.main(["predict", str(good_run), "--data", str(data), "--out", str(out)]) == 0
    assert not stale.exists() and fresh.exists()  # a young one may belong to a predict running now


def test_predict_on_a_vae_run_is_one_line(tmp_path, capsys):
    run = tmp_path / "vae"
    assert cli.main(["train", "--model", "vae", *TINY, "--out", str(run)]) == 0
    data = _data(run)
    capsys.readouterr()
    before = snapshot(tmp_path)
    assert cli.main(["predict", str(run), "--data", str(data)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "has no clusters" in err and snapshot(tmp_path) == before


def test_evaluate_no_save_writes_nothing_and_eval_json_records_its_checkpoint(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    before = snapshot(run)
    assert cli.main(["evaluate", str(run), "--num-samples", "4", "--no-save"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert snapshot(run) == before
    assert cli.main(["evaluate", str(run), "--num-samples", "4"]) == 0
    saved = json.loads((run / "eval.json").read_text())
    assert saved["epoch"] == printed["epoch"] == 1
    digest = runs.checkpoint_source(run)["checkpoint_sha256"]
    assert saved["checkpoint_sha256"] == printed["checkpoint_sha256"] == digest


def test_a_sample_grid_too_big_to_draw_names_the_largest(monkeypatch):
    from pyro_gmvae import plots
    from pyro_gmvae.errors import ConfigError

    with pytest.raises(ConfigError, match=r"--per-cluster 2000 makes a picture of .* pass --per-cluster 1092 or less"):
        plots._check_sample_size(10, 2000, 64, 5, (1, 8, 8), "cpu")
    plots._check_sample_size(10, 1092, 64, 5, (1, 8, 8), "cpu")  # the largest named is accepted
    with pytest.raises(ConfigError, match="pass --per-cluster 43 or less"):  # heat map: 0.15 in a sample, 100 clusters
        plots._check_sample_size(100, 44, 30, 5, None, "cpu")


def test_data_past_the_training_range_get_a_warning(tmp_path, good_run, capsys):
    lo, hi = runs.trained_range(good_run)
    np.save(tmp_path / "far.npy", np.full((3, 2), hi + 3 * (hi - lo), np.float32))
    argv = ["predict", str(good_run), "--data", str(tmp_path / "far.npy"), "--out", str(tmp_path / "l.csv")]
    assert cli.main(argv) == 0
    err = capsys.readouterr().err
    assert "warning:" in err and "reach past the training range" in err and f"[{lo:.4g}, {hi:.4g}]" in err


def test_a_picture_replaces_a_symlink_instead_of_writing_through_it(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    checkpoint = (run / "checkpoint.pt").read_bytes()
    os.symlink(run / "checkpoint.pt", tmp_path / "s.png")
    os.symlink(run / "checkpoint.pt", run / "curves.png")
    assert cli.main(["sample", str(run), "--out", str(tmp_path / "s.png")]) == 0
    assert cli.main(["plot", str(run)]) == 0
    assert (run / "checkpoint.pt").read_bytes() == checkpoint
    assert not (tmp_path / "s.png").is_symlink() and (tmp_path / "s.png").read_bytes()[:4] == b"\x89PNG"
    assert not (run / "curves.png").is_symlink()
