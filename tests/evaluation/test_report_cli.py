"""``pyro-gmvae evaluate``, ``sample`` and ``plot`` on tiny trained runs."""

import json
import math

import pytest
import torch

from pyro_gmvae.cli import main
from pyro_gmvae.evaluation.metrics import clustering_scores
from pyro_gmvae.evaluation.report import evaluate_run
from pyro_gmvae.runs import load_run_data
from pyro_gmvae.evaluation.responsibilities import predict
from pyro_gmvae.runs import load_run

PNG = b"\x89PNG\r\n\x1a\n"
EVAL_FIELDS = {"elbo", "log_likelihood", "log_likelihood_stderr", "khat_max", "khat_share_above_0_7", "acc", "nmi",
               "ari", "num_samples", "num_datapoints"}


def _train(out, *args):
    code = main(["train", "--num-datapoints", "60", "--epochs", "1", "--pretrain-epochs", "0", "--network", "toy",
                 "--num-clusters", "3", "--batch-size", "30", "--no-progress", "--out", str(out), *args])
    assert code == 0


@pytest.fixture(scope="module")
def digits_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "digits"
    _train(out, "--dataset", "digits", "--latent-dim", "3")
    return out


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "synthetic"
    _train(out, "--dataset", "synthetic", "--model", "gmvae", "--latent-dim", "2")
    return out


def _is_png(path):
    return path.exists() and path.read_bytes()[:8] == PNG


def test_evaluate_prints_and_writes_every_field(digits_run, capsys):
    capsys.readouterr()
    assert main(["evaluate", str(digits_run), "--num-samples", "30", "--batch-size", "25"]) == 0
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((digits_run / "eval.json").read_text())
    assert printed == written
    assert EVAL_FIELDS <= set(written)
    assert written["num_samples"] == 30 and written["num_datapoints"] == 60
    assert written["elbo"] <= written["log_likelihood"] < 0
    assert all(math.isfinite(written[k]) for k in ("log_likelihood_stderr", "khat_max"))
    assert 0 <= written["khat_share_above_0_7"] <= 1
    assert sum(written["cluster_shares"]) == pytest.approx(1)


def test_evaluate_run_scores_the_predicted_clusters(digits_run):
    result = evaluate_run(digits_run, num_samples=2, batch_size=1000)
    assert result["khat_max"] is None and result["khat_share_above_0_7"] is None  # too few samples for PSIS
    model, guide, *_ = load_run(digits_run)
    data = load_run_data(digits_run)
    scores = clustering_scores(data.y, predict(model, guide, data.x))
    assert {k: result[k] for k in scores} == pytest.approx(scores)
    assert evaluate_run(digits_run, num_samples=2, batch_size=1000) == result  # seeded: reproducible


def test_evaluate_reports_a_bad_split(digits_run, capsys):
    assert main(["evaluate", str(digits_run), "--split", "test"]) == 2
    assert "split" in capsys.readouterr().err


def test_sample_writes_an_image_grid(digits_run, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["sample", str(digits_run), "--per-cluster", "4", "--out", str(out)]) == 0
    assert _is_png(out)
    assert capsys.readouterr().out.strip() == str(out)


def test_sample_writes_a_scatter_for_2d_data(synthetic_run):
    assert main(["sample", str(synthetic_run), "--per-cluster", "5"]) == 0
    assert _is_png(synthetic_run / "samples.png")


@pytest.mark.parametrize("run", ["digits_run", "synthetic_run"])
def test_plot_writes_curves_and_latent_view(run, request, capsys):
    run_dir = request.getfixturevalue(run)
    capsys.readouterr()
    assert main(["plot", str(run_dir)]) == 0
    printed = capsys.readouterr().out.split()
    assert printed == [str(run_dir / "curves.png"), str(run_dir / "latent.png")]
    assert all(_is_png(run_dir / name) for name in ("curves.png", "latent.png"))


def test_missing_run_is_a_clean_error(tmp_path, capsys):
    assert main(["evaluate", str(tmp_path / "nothing")]) == 2
    assert "train" in capsys.readouterr().err


def test_sample_grid_shape_per_cluster(digits_run):
    from pyro_gmvae.evaluation.generation import sample_per_cluster

    model, *_ = load_run(digits_run)
    grid = sample_per_cluster(model, 4)
    assert grid.shape == (3, 4, 64)
    assert torch.all((grid >= 0) & (grid <= 1))  # Bernoulli means
