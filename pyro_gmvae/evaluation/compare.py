"""Two runs' ``log p(x)`` on the same datapoints, and their paired difference with its standard errors.

A difference of two means estimated on the same images is far more precise than the two means' own standard
errors suggest: most of their spread is the images', and it cancels in the per-image difference. So
:func:`compare_runs` scores both runs with one estimator on the same datapoints and reports

- ``difference``: the mean of ``log p_B(x_n) - log p_A(x_n)`` (positive: B assigns the data more probability);
- ``difference_stderr``: the paired standard error, ``std_n(d_n) / sqrt(N)`` (the images as a sample);
- ``difference_mc_stderr``: the Monte-Carlo standard error of the mean difference (the sampler's own error,
  ``sqrt(sum_n se_A,n^2 + se_B,n^2) / N``), with each run's k-hat share to say how far to trust it.

``pyro-gmvae compare RUN_A RUN_B`` prints it.
"""

import math

import pyro
import torch

from ..data.binarize import binarize_static
from ..errors import ConfigError, check_positive
from ..runs import load_run, load_run_data
from .ais import check_ais_memory
from .estimators import COUNTS, check_block_memory, check_estimator, default_count, estimate_log_likelihood
from .marginal import mc_stderr_of_mean
from .report import ais_work


def _scored_data(run_dir, train_config, split, num_datapoints, device):
    data = load_run_data(run_dir, split, device)
    x = data.x if num_datapoints is None else data.x[:num_datapoints]
    return binarize_static(x) if train_config.binarize is not None else x


def compare_runs(run_a, run_b, *, estimator="is-guide", num_samples=None, split="test", num_datapoints=None,
                 device="cpu", batch_size=100, seed=0, progress=False, log=None):
    """``log p(x)`` of the runs ``run_a`` and ``run_b`` on the same datapoints (the first ``num_datapoints`` of
    ``split`` of their data set, binarized as the runs were scored) by ``estimator``, and the paired
    difference B - A with its standard errors (module docstring). Refused in one line, before any estimate,
    when a run folder cannot be opened, the two runs' data differ or the estimate would not fit in memory.
    ``progress`` and ``log`` as :func:`~pyro_gmvae.evaluation.report.evaluate_run`'s (AIS's progress, the line
    saying its work)."""
    check_estimator(estimator)
    if num_samples is not None:
        if "num_samples" not in COUNTS[estimator]:
            raise ConfigError(f"--estimator {estimator} does not take --num-samples; choose is or is-guide")
        check_positive("--num-samples", num_samples, integer=True)
    if num_datapoints is not None:
        check_positive("--num-datapoints", num_datapoints, integer=True)
    check_positive("--batch-size", batch_size, integer=True)
    loaded = {name: load_run(run_dir, device) for name, run_dir in (("a", run_a), ("b", run_b))}  # both open first
    x_a, x_b = (_scored_data(run_dir, loaded[name][3], split, num_datapoints, device)
                for name, run_dir in (("a", run_a), ("b", run_b)))
    if x_a.shape != x_b.shape or not torch.equal(x_a, x_b):
        raise ConfigError(f"the runs {run_a} and {run_b} are scored on different data ({tuple(x_a.shape)} and "
                          f"{tuple(x_b.shape)}, or other values: another data set, split or binarization); "
                          "compare runs trained on the same data set")
    counts = {k: default_count(estimator, k) for k in COUNTS[estimator]}
    counts.update({} if num_samples is None else {"num_samples": num_samples})
    for model, guide, *_ in loaded.values():  # before any estimate, so that no work is lost to a refusal
        if "num_samples" in counts:
            check_block_memory(counts["num_samples"], min(batch_size, x_a.shape[0]), device)
        else:
            check_ais_memory(model, guide, x_a, counts["num_steps"], counts["num_chains"], batch_size=batch_size)
    if log is not None and estimator == "ais":
        log(ais_work("AIS of each run", x_a.shape[0], counts))
    options = {} if num_samples is None else {"num_samples": num_samples}
    rows = {}
    for name, (model, guide, *_) in loaded.items():
        pyro.set_rng_seed(seed)
        with torch.no_grad():
            estimate = estimate_log_likelihood(model, guide, x_a, estimator, batch_size=batch_size, **options,
                                               progress=progress if estimator == "ais" else progress is True)
        rows[name] = (estimate, estimate.summary())
    config_a, config_b = loaded["a"][2], loaded["b"][2]
    (est_a, sum_a), (est_b, sum_b) = rows["a"], rows["b"]
    d = (est_b.log_likelihood - est_a.log_likelihood).double()
    n = d.shape[0]
    mc = None
    if getattr(est_a, "mc_stderr", None) is not None and getattr(est_b, "mc_stderr", None) is not None:
        mc = mc_stderr_of_mean((est_a.mc_stderr.double() ** 2 + est_b.mc_stderr.double() ** 2).sqrt())
    return {"run_a": str(run_a), "run_b": str(run_b), "estimator": estimator, "num_samples": sum_a.get("num_samples"),
            "split": split, "num_datapoints": n,
            "log_likelihood_a": sum_a["log_likelihood"], "log_likelihood_b": sum_b["log_likelihood"],
            "difference": float(d.mean()),
            "difference_stderr": float(d.std() / math.sqrt(n)) if n > 1 else None,
            "difference_mc_stderr": mc,
            "khat_share_above_0_7_a": sum_a.get("khat_share_above_0_7"),
            "khat_share_above_0_7_b": sum_b.get("khat_share_above_0_7"),
            "models": [config_a.model, config_b.model]}


def compare_headline(result):
    """One sentence of :func:`compare_runs`'s result."""
    se = result["difference_stderr"]
    mc = result["difference_mc_stderr"]
    return (f"log p(x) of B - A = {result['difference']:+.3f} nats per datapoint (paired standard error "
            f"{'n/a' if se is None else f'{se:.3f}'}, Monte-Carlo {'n/a' if mc is None else f'{mc:.3f}'}) on "
            f"{result['num_datapoints']} datapoints of the {result['split']} split by {result['estimator']}: "
            f"A {result['log_likelihood_a']:.2f}, B {result['log_likelihood_b']:.2f}")
