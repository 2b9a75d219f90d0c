"""The paired comparison of two runs, and the warnings on AIS's acceptance and the BDMC gap."""

import json
import math

import pytest
import torch

from cli_cases import TINY
from pyro_gmvae import ConfigError
from pyro_gmvae.cli import main
from pyro_gmvae.evaluation import compare_runs
from pyro_gmvae.evaluation.report import estimate_notes
from pyro_gmvae.runs import load_run, load_run_data
from pyro_gmvae.evaluation.estimators import estimate_log_likelihood
import pyro


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    for name, epochs in (("a", "1"), ("b", "3")):
        assert main(["train", *TINY[:-5], "--epochs", epochs, "--pretrain-epochs", "0", "--no-progress",
                     "--out", str(root / name), "--threads", "1"]) == 0
    return root / "a", root / "b"


def test_the_paired_difference_is_the_mean_of_per_datapoint_differences(two_runs):
    a, b = two_runs
    result = compare_runs(a, b, num_samples=20, split="all", num_datapoints=50)
    x = load_run_data(a, "all").x[:50]
    per = []
    for run in (a, b):  # the same estimator, seed and datapoints, by hand
        model, guide, *_ = load_run(run)
        pyro.set_rng_seed(0)
        with torch.no_grad():
            per.append(estimate_log_likelihood(model, guide, x, "is-guide", num_samples=20, batch_size=100))
    d = (per[1].log_likelihood - per[0].log_likelihood).double()
    assert math.isclose(result["difference"], float(d.mean()), rel_tol=1e-9)
    assert math.isclose(result["difference_stderr"], float(d.std() / math.sqrt(50)), rel_tol=1e-9)
    mc = math.sqrt(float((per[0].mc_stderr.double() ** 2 + per[1].mc_stderr.double() ** 2).sum())) / 50
    assert math.isclose(result["difference_mc_stderr"], mc, rel_tol=1e-9)
    assert math.isclose(result["log_likelihood_b"] - result["log_likelihood_a"], result["difference"], rel_tol=1e-6)


def test_compare_from_the_shell_and_its_refusals(two_runs, tmp_path, capsys):
    a, b = two_runs
    assert main(["compare", str(a), str(b), "--split", "all", "--num-samples", "10", "--num-datapoints", "20"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["num_datapoints"] == 20 and "log p(x) of B - A" in err
    assert main(["compare", str(a), str(b), "--estimator", "ais", "--num-samples", "10", "--split", "all"]) == 2
    assert "does not take --num-samples" in capsys.readouterr().err
    other = tmp_path / "other"  # the same data set, fewer datapoints: other data
    assert main(["train", *TINY[:2], "--num-datapoints", "150", *TINY[4:], "--out", str(other), "--threads", "1"]) == 0
    with pytest.raises(ConfigError, match="scored on different data"):
        compare_runs(a, other, split="all")


def test_low_acceptance_and_bdmc_gaps_are_said():
    base = {"estimator": "ais", "log_likelihood": -9.0, "num_steps": 5, "num_chains": 2, "num_datapoints": 3,
            "normalised": True}
    assert any("acceptance is 0.00" in n for n in estimate_notes({**base, "acceptance": 0.0})[1])
    assert estimate_notes({**base, "acceptance": 0.7})[1] == []
    bdmc = {"bdmc_lower": 1.0, "bdmc_upper": 1.0, "bdmc_num_datapoints": 50, "bdmc_num_steps": 5, "bdmc_num_chains": 2}
    within = estimate_notes({**base, "acceptance": 0.7, **bdmc, "bdmc_gap": -0.002, "bdmc_gap_stderr": 0.01})[1]
    beyond = estimate_notes({**base, "acceptance": 0.7, **bdmc, "bdmc_gap": -0.096, "bdmc_gap_stderr": 0.01})[1]
    large = estimate_notes({**base, "acceptance": 0.7, **bdmc, "bdmc_gap": 3000.0, "bdmc_gap_stderr": 1.0})[1]
    assert "within twice its error" in within[0] and "did not mix" in beyond[0] and "loose" in large[0]
