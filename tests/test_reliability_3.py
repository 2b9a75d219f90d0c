"""Reliability, round three (issue 34): costs checked before the work (memory of every estimator and of a
loaded run), a full disk in one line with the run unchanged, long evaluations that say what they will cost
and show their progress, small or odd input refused in words, and messages that name the cause and, on the
command line, the flag. Every refused case exits with one line and changes nothing on disk."""

import errno
import io
import json
import os

import numpy as np
import pytest
import torch

from pyro_gmvae import cli, runs
from pyro_gmvae.errors import ConfigError, DataError
from pyro_gmvae.evaluation.metrics import clustering_scores, hungarian_accuracy, many_to_one_accuracy
from cli_cases import TINY, assert_refused, copy_run, good_run, on_run, snapshot, train  # noqa: F401


def _file(tmp_path, name, **arrays):
    path = tmp_path / name
    if name.endswith(".npy"):
        np.save(path, arrays["x"])
    else:
        np.savez(path, **arrays)
    return str(path)


def npy_train(array, *args, name="data.npy", **more):
    """``train`` on a .npy (or .npz with ``more`` arrays) file written into the test's folder."""
    def build_case(tmp_path, good_run):
        path = _file(tmp_path, name, x=array, **more)
        return ["train", "--dataset", "file", "--data-path", path, "--network", "toy", "--epochs", "1",
                "--no-progress", *args], None
    return build_case


ROWS = np.random.default_rng(0).normal(size=(2, 3)).astype(np.float32)

# -- 5. small or odd input, 6. misleading messages (files) ---------------------------------------------------

CLI_CASES = {
    "umap-inputs-two-rows": (npy_train(ROWS, "--init", "umap-inputs", "--num-clusters", "1", "--pretrain-epochs", "1"),
                             ["--init umap-inputs", "at least 3 datapoints", "got 2", "--init gmm"]),
    "umap-one-row": (npy_train(ROWS[:1], "--init", "umap", "--num-clusters", "1", "--pretrain-epochs", "1"),
                     ["--init umap", "got 1", "--init gmm"]),
    "bool-npy": (npy_train(np.ones((5, 3), dtype=bool)), ["booleans", "dtype bool", "np.save", "astype"]),
    "complex-npy": (npy_train(np.ones((5, 3), dtype=complex)), ["complex numbers", "np.save"]),
    "string-labels-npz": (npy_train(np.ones((6, 3), dtype=np.float32), name="data.npz", y=np.array(["a", "b"] * 3)),
                          ["labels y", "strings", "integers", "return_inverse"]),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(name, tmp_path, good_run, capsys):
    assert_refused(CLI_CASES[name], tmp_path, good_run, capsys)


def test_no_message_gives_python_advice_for_a_file(tmp_path, capsys):
    path = _file(tmp_path, "data.npy", x=np.ones((5, 3), dtype=bool))
    assert cli.main(["train", "--dataset", "file", "--data-path", path, "--out", str(tmp_path / "o")]) == 2
    assert "x.float()" not in capsys.readouterr().err


@pytest.mark.parametrize("call, words", [
    (lambda: hungarian_accuracy(np.array([0, 1, 2]), np.array([0, 1])), ["3 labels but 2 clusters"]),
    (lambda: many_to_one_accuracy([0, 1], [0]), ["2 labels but 1 clusters"]),
    (lambda: clustering_scores(np.array([]), np.array([])), ["no datapoints", "0 labels"]),
])
def test_metrics_name_the_lengths(call, words):
    with pytest.raises(DataError) as info:
        call()
    for word in words:
        assert word in str(info.value)


def test_the_umap_start_refuses_too_few_points_itself():
    from pyro_gmvae.inference.pretrain import _umap_labels
    with pytest.raises(DataError, match="at least 3 datapoints"):
        _umap_labels(np.zeros((2, 4)), 1, 0)


def test_split_held_out_takes_an_array():
    from pyro_gmvae.selection import split_held_out
    train_part, held = split_held_out(np.arange(30.0).reshape(10, 3), 0.2)
    assert (train_part.num_datapoints, held.num_datapoints) == (8, 2)


@pytest.mark.slow
def test_sweep_num_clusters_takes_an_array():
    from pyro_gmvae.selection import sweep_num_clusters
    x = np.random.default_rng(0).normal(size=(40, 4))
    rows = sweep_num_clusters(x, num_clusters=[2], seeds=[0], num_samples=10, epochs=1, pretrain_epochs=0,
                              init_warmup_epochs=0, progress=False, network="toy")
    assert [r["num_clusters"] for r in rows] == [2]


# -- 4. a full disk while writing ------------------------------------------------------------------------------

def _fill_disk_after(monkeypatch, num_bytes):
    """torch.save as on a disk that fills after ``num_bytes``: the write raises ENOSPC inside torch's writer,
    which then raises its own ``RuntimeError: ... unexpected pos`` (what a real full tmpfs gives)."""
    real = torch.save

    def save(obj, f, *args, **kwargs):
        class Full(io.RawIOBase):
            written = 0

            def writable(self):
                return True

            def write(self, b):
                self.written += len(b)
                if self.written > num_bytes:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                return f.write(b)
        return real(obj, Full(), *args, **kwargs)
    monkeypatch.setattr(torch, "save", save)


def _one_error_line(capfd, command):
    """The one error line, last; before it only training's phase lines and warnings (one line each)."""
    err = capfd.readouterr().err.strip()
    lines = err.splitlines()
    assert lines[-1].startswith(f"pyro-gmvae {command}: error: "), err
    assert all(line.startswith(("pyro-gmvae: ", f"pyro-gmvae {command}: warning: ")) for line in lines[:-1]), err
    return lines[-1]


def test_a_full_disk_on_resume_leaves_the_run_as_it_was(tmp_path, good_run, monkeypatch, capfd):
    run = copy_run(good_run, tmp_path)
    before = snapshot(run)
    _fill_disk_after(monkeypatch, 1000)
    assert cli.main(["train", "--resume", str(run), "--epochs", "3", "--no-progress"]) == 2
    line = _one_error_line(capfd, "train")
    for words in ("No space left on device", "while writing", runs.CHECKPOINT, "the run is unchanged at epoch 1",
                  "free some space"):
        assert words in line, line
    assert snapshot(run) == before  # config.json still says epochs 1, as its checkpoint
    assert json.loads((run / runs.CONFIG).read_text())["train"]["epochs"] == 1


def test_config_changes_with_the_checkpoint_it_describes(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    assert cli.main(["train", "--resume", str(run), "--epochs", "2", "--no-progress"]) == 0
    assert json.loads((run / runs.CONFIG).read_text())["train"]["epochs"] == 2
    assert runs.load_checkpoint(run)["epoch"] == 2


def test_a_full_disk_in_a_new_run_leaves_nothing(tmp_path, monkeypatch, capfd):
    _fill_disk_after(monkeypatch, 0)
    out = tmp_path / "full" / "run"
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    line = _one_error_line(capfd, "train")
    assert "No space left on device" in line and "the new run was not kept" in line, line
    assert not (tmp_path / "full").exists()


def test_a_write_hidden_behind_a_library_error_is_a_storage_error(tmp_path):
    def write(f):
        try:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    with pytest.raises(runs.storage.StorageError, match="No space left on device") as info:
        runs.atomic_write_bytes(tmp_path / "file", write)
    assert "inline_container" not in str(info.value) and not list(tmp_path.iterdir())


# -- 3. costs checked before the work ---------------------------------------------------------------------------

def _edit_config(**model):
    def edit(run):
        raw = json.loads((run / runs.CONFIG).read_text())
        raw["model"].update(model)
        (run / runs.CONFIG).write_text(json.dumps(raw))
    return edit


COST_CASES = {
    "ais-steps-and-chains": (on_run(lambda run: ["evaluate", str(run), "--estimator", "ais", "--num-steps",
                                                 "100000000000", "--num-chains", "100000000"]),
                             ["AIS with 100,000,000 chains", "--num-chains", "--num-steps", "needs about", "GiB"]),
    "ais-chains": (on_run(lambda run: ["evaluate", str(run), "--estimator", "ais", "--num-steps", "2",
                                       "--num-chains", "100000000"]), ["AIS with", "needs about", "lower the chains"]),
    "bdmc": (on_run(lambda run: ["evaluate", str(run), "--estimator", "is-guide", "--num-samples", "3", "--bdmc",
                                 "1000000000"]), ["BDMC on 1,000,000,000 simulated datapoints (--bdmc)",
                                                  "needs about", "lower", "--bdmc"]),
    "config-latent-dim": (on_run(lambda run: ["evaluate", str(run)], _edit_config(latent_dim=10 ** 12)),
                          ["config.json", "latent_dim 1000000000000", "loading it needs about",
                           "restore the config.json"]),
    "config-num-clusters": (on_run(lambda run: ["evaluate", str(run)], _edit_config(num_clusters=10 ** 9)),
                            ["num_clusters 1000000000", "loading it needs about"]),
    "sample-config-latent-dim": (on_run(lambda run: ["sample", str(run)], _edit_config(latent_dim=10 ** 12)),
                                 ["loading it needs about"]),
}


@pytest.mark.parametrize("name", list(COST_CASES))
def test_costs_are_checked_before_the_work(name, tmp_path, good_run, capsys):
    assert_refused(COST_CASES[name], tmp_path, good_run, capsys)


def test_the_library_estimators_check_their_cost_and_options():
    from pyro_gmvae import ModelConfig, build
    from pyro_gmvae.evaluation import ais
    from pyro_gmvae.evaluation.estimators import estimate_log_likelihood
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=5, network="toy"))
    x = torch.rand(3, 6)
    with pytest.raises(ConfigError, match="needs about"):
        ais.annealed_importance_sampling(model, guide, x, num_steps=10 ** 11, num_chains=10 ** 8)
    with pytest.raises(ConfigError, match="simulated datapoints"):
        ais.bdmc(model, guide, 10 ** 12, x, num_steps=2, num_chains=2)
    with pytest.raises(ConfigError, match="of log-weights per batch"):
        estimate_log_likelihood(model, guide, x, "is-guide", num_samples=10 ** 15)
    with pytest.raises(ConfigError) as info:
        estimate_log_likelihood(model, guide, x, "is-guide", bogus=3)
    assert "estimator 'is-guide' takes no option 'bogus'" in str(info.value) and "num_samples" in str(info.value)
    assert "estimate_marginal_likelihood" not in str(info.value)


# -- 2. a long evaluation says its cost and its progress ---------------------------------------------------------

def test_ais_says_its_work_and_shows_progress_in_a_log(tmp_path, good_run, monkeypatch, capsys):
    from pyro_gmvae.evaluation import ais
    monkeypatch.setattr(ais, "PROGRESS_MIN_SECONDS", 0.0)
    run = copy_run(good_run, tmp_path)
    assert cli.main(["evaluate", str(run), "--estimator", "ais", "--num-steps", "20", "--num-chains", "2",
                     "--split", "all", "--batch-size", "200"]) == 0
    err = capsys.readouterr().err.splitlines()  # stderr is no terminal under pytest: lines, not a bar
    assert any("AIS: 200 datapoints x (2 chains + a pilot of 4) x 20 steps x 5 leapfrog steps = 1.2e+05 gradient "
               "evaluations" in line for line in err), err
    progress = [line for line in err if "HMC transitions" in line]
    assert len(progress) == 11 and "100% (40 of 40 HMC transitions)" in progress[-1], progress  # a first estimate


def test_a_quick_ais_prints_no_progress(tmp_path, good_run, capsys):
    from pyro_gmvae import ModelConfig, build
    from pyro_gmvae.evaluation import ais
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=5, network="toy"))
    lines = []
    ais.annealed_importance_sampling(model, guide, torch.rand(3, 6), num_steps=5, num_chains=2, progress=lines.append)
    assert lines == []


# -- 6. messages that name the cause, and on the command line the flag ------------------------------------------

HUGE = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32) * 1e30
MESSAGE_CASES = {
    "huge-data": (npy_train(HUGE, "--num-clusters", "3", "--pretrain-epochs", "2"),
                  ["the data reach 2.4e+30", "overflow float32", "standardise the data"]),
    "constant-data": (npy_train(np.ones((50, 4), dtype=np.float32), "--num-clusters", "3", "--pretrain-epochs", "2"),
                      ["the data are constant (all 50 rows are equal)", "--init gmm"]),
    "one-row-one-cluster": (npy_train(np.ones((1, 4), dtype=np.float32), "--num-clusters", "1", "--pretrain-epochs",
                                      "2"), ["needs at least 2 datapoints", "got 1", "pass more data"]),
    "temperature-without-relaxed": (train("--cluster-inference", "exact", "--temperature-start", "3"),
                                    ["--temperature-start", "relaxed cluster inference only", "--cluster-inference "
                                                                                              "relaxed"]),
    "temperature-decay-without-relaxed": (train("--temperature-decay", "0.2"), ["--temperature-decay"]),
    "split-on-digits": (train("--split", "train"), ["has no train/test split; use --split all"]),
    "temperature-zero": (train("--cluster-inference", "relaxed", "--temperature-start", "0"),
                         ["--temperature-start must be > 0"]),
    "likelihood-bernoulli": (train("--likelihood", "bernoulli"), ["or use --likelihood normal"]),
}


@pytest.mark.parametrize("name", list(MESSAGE_CASES))
def test_messages_name_the_cause_and_the_flag(name, tmp_path, good_run, capsys):
    assert_refused(MESSAGE_CASES[name], tmp_path, good_run, capsys)


def test_constant_data_give_no_library_warnings(tmp_path, good_run, capfd):
    assert_refused(MESSAGE_CASES["constant-data"], tmp_path, good_run, capfd)  # one line on the very stderr


def test_a_relaxed_run_takes_its_temperatures():
    from pyro_gmvae import ModelConfig, TrainConfig
    from pyro_gmvae.runs.preflight import check_settings_apply
    check_settings_apply(ModelConfig(cluster_inference="relaxed"), TrainConfig(temperature_start=3.0))
    check_settings_apply(ModelConfig(), TrainConfig())
    with pytest.raises(ConfigError, match="temperature_end=0.3"):
        check_settings_apply(ModelConfig(), TrainConfig(temperature_end=0.3))


def test_the_pretraining_loss_names_huge_data_as_its_cause():
    from pyro_gmvae import ModelConfig, build
    from pyro_gmvae.errors import TrainingError
    from pyro_gmvae.inference.pretrain import pretrain_autoencoder
    model, guide = build(ModelConfig(data_dim=4, num_clusters=3, latent_dim=2, network="toy"))
    with pytest.raises(TrainingError, match="the data reach 2.4e\\+30: standardise them"):
        pretrain_autoencoder(model, guide, torch.as_tensor(HUGE), epochs=1, batch_size=10, lr=1e-3, seed=0)


def test_an_unknown_dataset_name_is_refused_by_fit():
    from pyro_gmvae import GMVAEClusterer
    with pytest.raises(ConfigError, match="unknown dataset 'bogus'; choose one of"):
        GMVAEClusterer(dataset="bogus").fit(np.random.default_rng(0).normal(size=(20, 3)))


def test_paths_keep_their_words(tmp_path):
    from pyro_gmvae.cli.parser import in_flags
    flags = {"batch_size": "--batch-size", "split": "--split", "overwrite": "--overwrite"}
    assert in_flags("cannot read runs/batch_size/x", flags) == "cannot read runs/batch_size/x"
    assert in_flags("batch_size=3 (--batch-size), split='all'", flags) == "batch_size=3 (--batch-size), --split all"
    assert in_flags("pass overwrite=True", flags) == "pass --overwrite"


def test_a_long_ais_says_its_time_left_before_its_first_tenth(monkeypatch):
    from pyro_gmvae import ModelConfig, build
    from pyro_gmvae.evaluation import ais
    clock = iter(range(0, 10 ** 6, 3))  # 3 s a transition
    monkeypatch.setattr(ais.time, "monotonic", lambda: next(clock))
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=5, network="toy"))
    lines = []
    ais.annealed_importance_sampling(model, guide, torch.rand(3, 6), num_steps=50, num_chains=2, progress=lines.append)
    assert "2% (2 of 100 HMC transitions), 6 s so far, about 4 min 54 s left" in lines[0], lines
    assert len(lines) == 11 and "100%" in lines[-1]


def test_a_full_disk_at_the_lock_leaves_no_folder(tmp_path, monkeypatch, capfd):
    real_fdopen = os.fdopen

    def fdopen(fd, *args, **kwargs):
        f = real_fdopen(fd, *args, **kwargs)

        def write(text):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        f.write = write
        return f
    monkeypatch.setattr(runs.folder.os, "fdopen", fdopen)
    out = tmp_path / "full" / "run"
    assert cli.main(["train", *TINY, "--out", str(out)]) == 2
    assert "No space left on device" in _one_error_line(capfd, "train")
    assert not (tmp_path / "full").exists()


IGNORED_FLAG_CASES = {
    "init-without-pretraining": (train("--init", "umap", "--model", "vade"), ["--init sets the pretraining",
                                                                             "does not pretrain", "drop it"]),
    "pretrain-lr-and-recipe-without-pretraining": (train("--model", "vade", "--pretrain-lr", "0.01",
                                                         "--pretrain-recipe", "mse"),
                                                   ["--pretrain-lr and --pretrain-recipe set", "drop them"]),
    "free-bits-site-without-free-bits": (train("--free-bits-site", "z"), ["--free-bits-site shapes the free-bits",
                                                                          "--free-bits LAMBDA"]),
    "prior-hidden-dim-on-vade": (train("--model", "vade", "--prior-hidden-dim", "7"),
                                 ["--prior-hidden-dim does not apply to --model vade"]),
}


@pytest.mark.parametrize("name", list(IGNORED_FLAG_CASES))
def test_flags_that_would_do_nothing_are_refused(name, tmp_path, good_run, capsys):
    assert_refused(IGNORED_FLAG_CASES[name], tmp_path, good_run, capsys)
