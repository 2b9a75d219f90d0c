"""GMVAEClusterer under careless use (issue 23): copies carry their own model, bad arguments get one line
naming the fix before anything is written, and data the model cannot encode are named, not a traceback."""

import copy
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from pyro_gmvae import GMVAEClusterer, load_dataset
from pyro_gmvae.errors import ConfigError, DataError

REPO = Path(__file__).resolve().parents[1]
TINY = dict(num_clusters=3, network="toy", latent_dim=2, epochs=1, pretrain_epochs=1, batch_size=50, progress=False)


@pytest.fixture(scope="module")
def arcs():
    return load_dataset("synthetic", num_datapoints=120).x.numpy()


@pytest.fixture(scope="module")
def fitted(arcs):
    return GMVAEClusterer(**TINY).fit(arcs)


def _same_model(a, b, x):
    np.testing.assert_array_equal(a.predict_proba(x), b.predict_proba(x))


def test_unpickled_in_a_new_process_it_saves_the_whole_run(fitted, arcs, tmp_path):
    (tmp_path / "est.pkl").write_bytes(pickle.dumps(fitted))
    script = "import pickle, sys; pickle.load(open(sys.argv[1], 'rb')).save(sys.argv[2])"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "est.pkl"), str(tmp_path / "run")], check=True,
                   env=env, cwd=tmp_path)
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "checkpoint.pt", "config.json", "metrics.jsonl", "pretrained.pt"]
    loaded = GMVAEClusterer.load(tmp_path / "run")
    _same_model(loaded, fitted, arcs)
    assert loaded.history_ == fitted.history_ and loaded.model_config_ == fitted.model_config_


def test_a_pickle_holds_state_dicts_not_a_path(fitted):
    state = fitted.__getstate__()
    assert "model_" not in state and "guide_" not in state
    assert not any(isinstance(v, (str, os.PathLike)) and "pyro-gmvae-" in str(v) for v in state.values())


def test_a_deep_copy_refitted_leaves_the_original_and_what_it_saves(fitted, arcs, tmp_path):
    before = fitted.predict_proba(arcs)
    twin = copy.deepcopy(fitted)
    _same_model(twin, fitted, arcs)
    twin.set_params(seed=1).fit(arcs[::-1].copy())
    assert not np.array_equal(twin.predict_proba(arcs), before)  # the copy did change
    np.testing.assert_array_equal(fitted.predict_proba(arcs), before)
    np.testing.assert_array_equal(GMVAEClusterer.load(fitted.save(tmp_path / "run")).predict_proba(arcs), before)


def test_unpickling_leaves_the_random_state_alone(fitted):
    blob = pickle.dumps(fitted)
    torch.manual_seed(5)
    pickle.loads(blob)
    after = torch.rand(3)
    torch.manual_seed(5)
    np.testing.assert_array_equal(after, torch.rand(3))


@pytest.mark.parametrize("n, problem", [(0, "must be > 0, got 0"), (-1, "must be > 0, got -1"),
                                        (2.5, "must be an integer, got 2.5"), (True, "must be an integer"),
                                        (10 ** 9, "draw in batches")])
def test_sample_refuses_a_bad_number_of_draws(fitted, n, problem):
    with pytest.raises(ConfigError, match=f"n \\(the number of draws\\) {problem}|{problem}"):
        fitted.sample(n)


def test_save_refuses_a_file_a_run_and_a_non_empty_folder_and_writes_nothing(fitted, tmp_path):
    (tmp_path / "file").write_text("keep me")
    with pytest.raises(ConfigError, match="is a file; pass a folder"):
        fitted.save(tmp_path / "file")
    assert (tmp_path / "file").read_text() == "keep me"
    fitted.save(tmp_path / "run")
    mtime = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(ConfigError, match="already holds a run; choose another folder"):
        fitted.save(tmp_path / "run")
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == mtime
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not empty"):
        fitted.save(tmp_path / "other")
    assert os.listdir(tmp_path / "other") == ["notes.txt"]


@pytest.mark.parametrize("where", [None, 3, ""])
def test_save_and_load_refuse_what_is_not_a_path(fitted, where):
    with pytest.raises(ConfigError, match=r"takes a folder path \(str or pathlib.Path\)"):
        GMVAEClusterer.load(where)
    with pytest.raises(ConfigError, match=r"takes a folder path"):
        fitted.save(where)


def test_load_of_a_file_says_to_pass_the_run_folder(tmp_path):
    (tmp_path / "checkpoint.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="is not a folder; pass the run folder"):
        GMVAEClusterer.load(tmp_path / "checkpoint.pt")


def test_one_datapoint_is_named_as_the_problem(arcs):
    with pytest.raises(DataError, match="fit needs at least 2 datapoints, got 1 sample; pass more rows"):
        GMVAEClusterer(**TINY).fit(arcs[:1])


def test_refitting_into_a_run_dir_needs_overwrite(arcs, tmp_path):
    GMVAEClusterer(**TINY, run_dir=tmp_path / "run").fit(arcs)
    mtime = (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns
    with pytest.raises(ConfigError, match=r"already holds a run; pass fit\(..., overwrite=True\)"):
        GMVAEClusterer(**TINY, run_dir=tmp_path / "run").fit(arcs)
    assert (tmp_path / "run" / "checkpoint.pt").stat().st_mtime_ns == mtime
    GMVAEClusterer(**TINY, run_dir=tmp_path / "run").fit(arcs, overwrite=True)


def test_huge_finite_values_are_named_with_the_training_range(fitted, arcs):
    x = arcs[:4].copy()
    x[2] = 1e20
    lo, hi = arcs.min(), arcs.max()
    for method in (fitted.predict, fitted.predict_proba, fitted.score):
        with pytest.raises(DataError, match=f"1 row\\(s\\) of X make the .* non-finite \\(first: row 2, values up to "
                                            f"1e\\+20.*trained on values in \\[{lo:g}, {hi:g}\\]"):
            method(x)
    assert np.isfinite(fitted.transform(x)).all()  # the embedding of a far point is far, not an error


def test_values_beyond_float32_are_named_not_counted_as_nan(fitted, arcs):
    x = arcs[:4].astype(np.float64)
    x[1, 0] = 1e39
    with pytest.raises(DataError, match="beyond the range of float32 \\(up to 1e\\+39\\); rescale"):
        fitted.predict(x)
    with pytest.raises(DataError, match="beyond the range of float32"):
        GMVAEClusterer(**TINY).fit(x)


def test_a_bernoulli_model_names_the_range_it_was_trained_on(arcs):
    scaled = (arcs - arcs.min()) / (arcs.max() - arcs.min())
    clusterer = GMVAEClusterer(**TINY).fit(scaled)
    with pytest.raises(DataError, match=r"values in \[-2, 3\] but the model has a Bernoulli likelihood and was "
                                        r"trained on values in \[0, 1\]; scale X as the training data were"):
        clusterer.predict(np.array([[-2.0, 3.0]]))


def test_an_unfitted_estimator_says_to_fit_or_load():
    from sklearn.exceptions import NotFittedError

    for call in (lambda e: e.predict(np.zeros((2, 2))), lambda e: e.sample(2), lambda e: e.save("x")):
        with pytest.raises(NotFittedError, match=r"not fitted yet; call fit\(X\) first, or GMVAEClusterer.load"):
            call(GMVAEClusterer())
