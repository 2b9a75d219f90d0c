"""``pyro-gmvae evaluate RUN --estimator is|is-guide|ais --bdmc N`` and the likelihood's normalisation, on
tiny trained runs."""

import json

import pyro
import pytest

from pyro_gmvae.cli import main
from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation import estimate_log_likelihood, evaluate_run
from pyro_gmvae.evaluation.estimators import default_count
from pyro_gmvae.runs import load_run, load_run_data


def _train(out, *args):
    code = main(["train", "--dataset", "digits", "--num-datapoints", "40", "--epochs", "1", "--pretrain-epochs", "0",
                 "--network", "toy", "--num-clusters", "3", "--latent-dim", "2", "--batch-size", "20",
                 "--no-progress", "--out", str(out), *args])
    assert code == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    return {"gray": _train(root / "gray"),
            "cb": _train(root / "cb", "--likelihood", "continuous-bernoulli"),
            "static": _train(root / "static", "--binarize", "static"),
            "dynamic": _train(root / "dynamic", "--binarize", "dynamic")}


def _evaluate(capsys, run, *args):
    capsys.readouterr()
    assert main(["evaluate", str(run), "--batch-size", "25", *args]) == 0
    out, err = capsys.readouterr()
    printed = json.loads(out)
    assert printed == json.loads((run / "eval.json").read_text())
    return printed, err


def test_bernoulli_on_gray_levels_is_flagged_and_the_density_is_not(runs, capsys):
    gray, err = _evaluate(capsys, runs["gray"], "--num-samples", "30")
    assert gray["normalised"] is False and gray["likelihood"] == "bernoulli" and gray["binarize"] is None
    assert "not a probability of the data" in err and '"normalised": false' in err
    cb, err = _evaluate(capsys, runs["cb"], "--num-samples", "30")
    assert cb["normalised"] is True and cb["likelihood"] == "continuous-bernoulli"
    assert "not a probability" not in err


@pytest.mark.parametrize("name", ["static", "dynamic"])
def test_a_binarized_run_is_scored_on_the_static_draw(runs, capsys, name):
    result, err = _evaluate(capsys, runs[name], "--num-samples", "30")
    assert result["normalised"] is True and result["binarize"] == name and "not a probability" not in err
    model, guide, *_ = load_run(runs[name])
    pyro.set_rng_seed(0)
    expected = estimate_log_likelihood(model, guide, binarize_static(load_run_data(runs[name]).x), "is",
                                       num_samples=30, batch_size=25)
    assert result["log_likelihood"] == pytest.approx(float(expected.log_likelihood.double().mean()), rel=1e-12)


def test_each_estimator_reports_its_counts_and_diagnostics(runs, capsys):
    default, err = _evaluate(capsys, runs["cb"])
    assert default["estimator"] == "is" and default["num_samples"] == default_count("is", "num_samples") == 500
    assert {"khat_share_above_0_7", "khat_max", "ess_mean", "ess_min", "log_likelihood_reliable", "elbo"} <= set(default)
    assert f"by is, 500 samples per datapoint; k-hat > 0.7 for {default['khat_share_above_0_7']:.0%}" in err
    guide_is, err = _evaluate(capsys, runs["cb"], "--estimator", "is-guide", "--num-samples", "40")
    assert guide_is["num_samples"] == 40 and "elbo_num_samples" not in guide_is  # the ELBO of the same draws
    assert guide_is["elbo"] <= guide_is["log_likelihood"]
    ais, err = _evaluate(capsys, runs["cb"], "--estimator", "ais", "--num-steps", "4", "--num-chains", "3")
    assert (ais["num_steps"], ais["num_chains"], ais["elbo_num_samples"]) == (4, 3, 100)
    assert 0 < ais["acceptance"] <= 1 and "khat_max" not in ais and "4 steps x 3 chains" in err


def test_bdmc_bounds_simulated_data_from_both_sides(runs, capsys):
    result, err = _evaluate(capsys, runs["cb"], "--estimator", "is-guide", "--num-samples", "30", "--bdmc", "5",
                            "--num-steps", "6", "--num-chains", "2")
    assert (result["bdmc_num_datapoints"], result["bdmc_num_steps"], result["bdmc_num_chains"]) == (5, 6, 2)
    assert result["bdmc_gap"] == pytest.approx(result["bdmc_upper"] - result["bdmc_lower"])
    assert result["estimator"] == "is-guide" and result["num_samples"] == 30
    assert f"gap {result['bdmc_gap']:.3f} nats" in err


@pytest.mark.parametrize("args,message", [
    (["--estimator", "is", "--num-steps", "5"], "--estimator is does not take --num-steps"),
    (["--estimator", "ais", "--num-samples", "5"], "--estimator ais does not take --num-samples"),
    (["--bdmc", "0"], "--bdmc must be"),
    (["--num-chains", "-2", "--estimator", "ais"], "--num-chains must be"),
])
def test_bad_counts_are_refused_in_one_line_before_any_work(runs, capsys, args, message):
    before = (runs["cb"] / "eval.json").stat().st_mtime_ns if (runs["cb"] / "eval.json").exists() else None
    capsys.readouterr()
    assert main(["evaluate", str(runs["cb"]), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    after = (runs["cb"] / "eval.json").stat().st_mtime_ns if (runs["cb"] / "eval.json").exists() else None
    assert before == after


def test_the_python_api_takes_the_same_options(runs):
    result = evaluate_run(runs["cb"], estimator="ais", num_steps=3, num_chains=2, batch_size=40)
    assert result["estimator"] == "ais" and result["num_datapoints"] == 40
