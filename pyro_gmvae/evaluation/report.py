"""Evaluate a run folder: the marginal likelihood by a named estimator with its diagnostics, optionally BDMC
bounds on simulated data, and clustering scores; the result goes to ``RUN_DIR/eval.json``
(``pyro-gmvae evaluate RUN --estimator is|is-guide|ais --bdmc N``).

The log-likelihood is a comparable number only if the likelihood is a probability of the data: eval.json
says ``"normalised": false`` for a Bernoulli likelihood on gray levels (binary cross-entropy, not a density),
and :func:`estimate_notes` says it in words. A run trained with ``binarize`` is evaluated on the static
binary draw of its data (:mod:`pyro_gmvae.data.binarize`).
"""

import dataclasses
import warnings
from pathlib import Path

import pyro
import torch

from ..data.binarize import binarize_static, check_binarizable
from ..data.datasets import check_num_features
from ..errors import ConfigError, check_positive
from ..models.decoders import is_normalised
from ..runs import (check_writable, checkpoint_source, data_fingerprint, describe_fingerprint, finite_or_none,
                    load_run, load_run_data, same_data, saved_fingerprint, write_json)
from .ais import ais_cost, check_ais_memory
from .ais import bdmc as run_bdmc
from .estimators import COUNTS, check_block_memory, check_estimator, default_count, estimate_log_likelihood
from .marginal import KHAT_THRESHOLD, elbo_per_datapoint, reliability_note
from .metrics import active_clusters, cluster_information, clustering_scores, most_confident_accuracy, used_clusters
from .responsibilities import cluster_marginals

EVAL = "eval.json"
#: Guide draws per datapoint of the ELBO that ``evaluate`` reports beside an estimator other than ``is-guide``.
ELBO_SAMPLES = 100
#: What each estimator is, in words (the CLI's help and the line ``evaluate`` prints).
DESCRIPTIONS = {"is": ("importance sampling from a Laplace fit per datapoint, moment-matched to its posterior, as a "
                       "Student-t mixed with the guide (0.8 / 0.2, a defensive mixture)"),
                "is-guide": "importance sampling from the amortized guide q(z | x) (quick)",
                "ais": "annealed importance sampling from q(z | x) with HMC (for agreement)"}


def cluster_shares(resp):
    """Each cluster's share of the data, ``(K,)``: the mean of the ``(N, K)`` responsibilities."""
    return resp.mean(0)


def _counts(estimator, given, bdmc=None):
    """The estimator's count keywords: the ``given`` ones, the function's defaults for the others; a count
    that neither the estimator nor BDMC (AIS's counts) takes is refused."""
    takes = COUNTS[estimator] + (COUNTS["ais"] if bdmc is not None else ())
    extra = [k for k, v in given.items() if v is not None and k not in takes]
    if extra:
        flags = ", ".join("--" + k.replace("_", "-") for k in extra)
        raise ConfigError(f"--estimator {estimator} does not take {flags}, which would be ignored; drop it or choose "
                          "an estimator that takes it (is, is-guide: --num-samples; ais and --bdmc: --num-steps, "
                          "--num-chains)")
    counts = {k: given[k] if given[k] is not None else default_count(estimator if k in COUNTS[estimator] else "ais", k)
              for k in takes}
    for k, v in counts.items():
        check_positive(f"--{k.replace('_', '-')}", v, integer=True)
    return counts


@torch.no_grad()
def evaluate_run(run_dir, num_samples=None, split=None, device="cpu", batch_size=500, *, seed=0, progress=False,
                 estimator="is", num_steps=None, num_chains=None, bdmc=None, save=True, log=None):
    """Evaluate the checkpoint in ``run_dir`` on its data set; returns the dict written to ``eval.json``.

    ``estimator`` names the estimator of ``log p(x)`` (:data:`~pyro_gmvae.evaluation.estimators.ESTIMATORS`:
    ``is``, the default and the reliable one; ``is-guide``, quick; ``ais``); its cost is ``num_samples``
    (``is``, ``is-guide``) or ``num_steps`` x ``num_chains`` (``ais``), None taking the function's default.
    ``bdmc=N`` also runs BDMC on N datapoints simulated from the model (``num_steps`` x ``num_chains`` AIS in
    each direction): its ``bdmc_lower``, ``bdmc_upper`` and ``bdmc_gap`` (means per datapoint).

    Keys: ``estimator``, ``log_likelihood`` (mean per datapoint, nats) and ``log_likelihood_stderr`` (std over
    datapoints / sqrt(N)); the estimator's diagnostics: ``khat_max``, ``khat_share_above_0_7`` (PSIS; None when
    too few samples to fit a tail), ``log_likelihood_reliable`` (importance sampling: False when any k-hat
    exceeds 0.7, None when unchecked), ``ess_mean`` and ``ess_min`` (``is``), ``acceptance`` (``ais``); its
    counts; ``elbo`` (from the same draws with ``is-guide``, else from :data:`ELBO_SAMPLES` guide draws);
    ``likelihood``, ``binarize`` and ``normalised`` (False: a Bernoulli likelihood of gray levels, not a
    probability of the data, so the number is not to be compared); ``num_datapoints``, ``split``; for a model
    with clusters ``cluster_shares``, ``num_active_clusters``, ``num_used_clusters`` and ``cluster_information``
    (the same with a ``super_cluster_`` prefix for the coarse level of a hierarchy), and with labels ``acc``,
    ``acc_many_to_one``, ``nmi``, ``ari``; ``epoch`` and ``checkpoint_sha256`` (the checkpoint it was computed
    from).

    Everything that could stop it is checked before the computation: the estimator and its counts, the
    folder must be writable and one batch of log-weights must fit in memory. Data that differ from those the
    run was trained on (same split) give a ``RuntimeWarning``; ``progress=True`` shows a bar over the batches
    (over the HMC transitions for AIS and BDMC), a callable ``progress`` gets a line per tenth of AIS's and
    BDMC's transitions (a log, where no bar can be drawn); ``log`` (e.g. ``print``) gets the work of AIS and
    BDMC, counted, before they start. With ``save=False`` nothing is written (and the folder need not be
    writable).
    """
    check_estimator(estimator)
    check_positive("batch_size", batch_size, integer=True)
    if bdmc is not None:
        check_positive("--bdmc", bdmc, integer=True)
    counts = _counts(estimator, {"num_samples": num_samples, "num_steps": num_steps, "num_chains": num_chains},
                     bdmc)
    model, guide, model_config, train_config, data_spec = load_run(run_dir, device)
    if save:
        check_writable(run_dir, "run folder")  # before the work, which an unwritable eval.json would lose
    source = checkpoint_source(run_dir)
    data = load_run_data(run_dir, split, device)
    check_num_features(data.data_dim, model_config.data_dim, "evaluate on the data set the run was trained on")
    if "num_samples" in COUNTS[estimator]:
        check_block_memory(counts["num_samples"], min(batch_size, data.num_datapoints), device)
    else:
        check_ais_memory(model, guide, data.x, counts["num_steps"], counts["num_chains"], batch_size=batch_size)
    if bdmc is not None:  # before any estimator runs, so that no work is lost to a refusal
        check_ais_memory(model, guide, data.x, counts["num_steps"], counts["num_chains"],
                         batch_size=min(batch_size, 100), simulated=bdmc)
    if split is None or split == (data_spec.get("split") or "all"):
        _warn_if_other_data(run_dir, data)
    if train_config.binarize is not None:  # scored on the static draw, the binary images of every run
        check_binarizable(data.x, train_config.binarize)
        data = dataclasses.replace(data, x=binarize_static(data.x))
    pyro.set_rng_seed(seed)
    own = {k: v for k, v in counts.items() if k in COUNTS[estimator]}
    if log is not None and estimator == "ais":
        log(ais_work("AIS", data.num_datapoints, counts))
    estimate = estimate_log_likelihood(model, guide, data.x, estimator, batch_size=batch_size,
                                       progress=progress if estimator == "ais" else progress is True, **own)
    result = {"estimator": estimator, **estimate.summary()}
    if "khat_share_above_0_7" in result:
        share = result["khat_share_above_0_7"]
        result["log_likelihood_reliable"] = None if share is None else share == 0.0
    if "elbo" not in result:
        result["elbo"] = float(elbo_per_datapoint(model, guide, data.x, ELBO_SAMPLES, batch_size).double().mean())
        result["elbo_num_samples"] = ELBO_SAMPLES
    if bdmc is not None:
        if log is not None:
            log(ais_work("BDMC", bdmc, counts, directions=2))
        bounds = run_bdmc(model, guide, bdmc, data.x, counts["num_steps"], counts["num_chains"],
                          batch_size=min(batch_size, 100), progress=progress).summary()
        result.update({f"bdmc_{k}": v for k, v in bounds.items()})
    result.update(likelihood=model_config.likelihood, binarize=train_config.binarize,
                  normalised=is_normalised(model_config.likelihood, data.x))
    result["split"] = split or data_spec.get("split") or "all"
    result.update(source)
    if model.cluster_sites:
        marginals = cluster_marginals(model, guide, data.x, batch_size=batch_size)
        for site in model.cluster_sites:  # coarse levels of a hierarchy get their site name as a prefix
            resp = marginals[site]
            prefix = "" if site == model.cluster_sites[-1] else f"{site}_"
            result[f"{prefix}cluster_shares"] = cluster_shares(resp).tolist()
            result[f"{prefix}num_active_clusters"] = active_clusters(resp)
            result[f"{prefix}num_used_clusters"] = used_clusters(resp)
            result[f"{prefix}cluster_information"] = cluster_information(resp)
        if data.y is not None:
            finest = marginals[model.cluster_sites[-1]]
            result.update(clustering_scores(data.y, finest.argmax(-1)))
            result["acc_most_confident"] = most_confident_accuracy(data.y, finest)
    result = {k: finite_or_none(v) for k, v in result.items()}  # eval.json is strict JSON
    if save:
        write_json(Path(run_dir) / EVAL, result)
    return result


def ais_work(name, num_datapoints, counts, directions=1):
    """The line said before AIS or BDMC starts: the work, counted in gradient evaluations."""
    steps, chains = counts["num_steps"], counts["num_chains"]
    defaults = {k: default_count("ais", k) for k in ("num_leapfrog", "num_adapt_chains")}  # what evaluate runs
    total = ais_cost(num_datapoints, steps, chains, directions=directions, **defaults)
    way = " in each direction" if directions == 2 else ""
    return (f"{name}: {num_datapoints:,} datapoints x ({chains:,} chain{'s' * (chains != 1)}{way} + a pilot of "
            f"{defaults['num_adapt_chains']}) x {steps:,} steps x {defaults['num_leapfrog']} leapfrog steps = "
            f"{total:.3g} gradient evaluations")


def estimate_notes(result):
    """``(headline, warnings)``: a sentence with the estimate, its estimator, its counts and its diagnostic
    (k-hat share, ESS, acceptance, the BDMC gap), and the warnings worth a person's attention (a likelihood
    that is not normalised, heavy-tailed weights), for ``result`` from :func:`evaluate_run` / eval.json.

    >>> headline, notes = estimate_notes({"estimator": "ais", "log_likelihood": -90.0, "num_steps": 500,
    ...     "num_chains": 16, "acceptance": 0.7, "num_datapoints": 100, "normalised": True})
    >>> headline[:60]
    'log p(x) = -90.00 nats per datapoint (100 datapoints) by ais'
    >>> headline[60:]
    ', 500 steps x 16 chains per datapoint; HMC acceptance 0.70'
    >>> notes
    []
    """
    name = result.get("estimator", "is-guide")
    n = result.get("num_datapoints")
    if name == "ais":
        counts = f"{result.get('num_steps')} steps x {result.get('num_chains')} chains"
        diagnostic = f"HMC acceptance {result.get('acceptance', float('nan')):.2f}"
    else:
        counts = f"{result.get('num_samples')} samples"
        share = result.get("khat_share_above_0_7")
        diagnostic = "k-hat unchecked" if share is None else f"k-hat > {KHAT_THRESHOLD} for {share:.0%}"
        if result.get("ess_mean") is not None:
            diagnostic += f", ESS mean {result['ess_mean']:.0f}"
    headline = (f"log p(x) = {result['log_likelihood']:.2f} nats per datapoint ({n} datapoints) by {name}, "
                f"{counts} per datapoint; {diagnostic}")
    if result.get("bdmc_gap") is not None:
        headline += (f". BDMC on {result['bdmc_num_datapoints']} simulated datapoints "
                     f"({result['bdmc_num_steps']} steps x {result['bdmc_num_chains']} chains): lower "
                     f"{result['bdmc_lower']:.2f}, upper {result['bdmc_upper']:.2f}, gap {result['bdmc_gap']:.3f} "
                     "nats per datapoint")
    notes = []
    if result.get("normalised") is False:
        notes.append(f"the likelihood is {result.get('likelihood')!r} on data with values strictly between 0 and "
                     "1 (gray levels): it is not a probability of the data, so this log-likelihood cannot be "
                     "compared with a density's nor with published numbers on binarized data (eval.json: "
                     "\"normalised\": false); train with --likelihood continuous-bernoulli, or --binarize static "
                     "or dynamic, for a comparable number")
    if name != "ais":
        note = reliability_note(result) if name == "is-guide" else _refined_note(result)
        if note is not None:
            notes.append(note)
    notes += _hmc_notes(result)
    return headline, notes


#: HMC acceptance below this leaves AIS's chains nearly still (AIS is then little more than IS from the guide).
LOW_ACCEPTANCE = 0.2
#: A BDMC gap above this (nats per datapoint) says AIS is loose on data like these (issue 19's target: 0.5).
LARGE_GAP = 0.5


def _hmc_notes(result):
    """Warnings on AIS's HMC acceptance and on the BDMC gap (negative within or beyond its Monte-Carlo error,
    or large)."""
    notes = []
    for key, what in (("acceptance", "AIS"), ("bdmc_acceptance_forward", "BDMC's forward AIS"),
                      ("bdmc_acceptance_reverse", "BDMC's reverse AIS")):
        value = result.get(key) if key != "acceptance" or result.get("estimator") == "ais" else None
        if value is not None and value < LOW_ACCEPTANCE:
            notes.append(f"{what}'s HMC acceptance is {value:.2f} (below {LOW_ACCEPTANCE}): its chains barely move, "
                         "so the estimate is close to importance sampling from the guide and may lie far below "
                         "log p(x); raise --num-steps, or cross-check with --estimator is")
    gap, stderr = result.get("bdmc_gap"), result.get("bdmc_gap_stderr")
    if gap is not None and gap < 0:
        within = stderr is not None and -gap <= 2 * stderr
        notes.append(f"the BDMC gap is negative ({gap:.3f} nats per datapoint, Monte-Carlo standard error "
                     f"{stderr if stderr is None else round(stderr, 3)}): "
                     + ("within twice its error, so the bounds agree: AIS is tight on data like these"
                        if within else "beyond twice its error, so the chains did not mix; raise --num-steps "
                                       "and --num-chains"))
    elif gap is not None and gap > LARGE_GAP:
        notes.append(f"the BDMC gap is {gap:.2f} nats per datapoint (above {LARGE_GAP}): AIS at {result.get('bdmc_num_steps')} "
                     "steps is loose on data like these, and so may be the estimate; raise --num-steps")
    return notes


def _refined_note(result):
    share = result.get("khat_share_above_0_7")
    if share is None:
        return (f"the importance-sampled log-likelihood is unchecked: {result.get('num_samples')} samples per "
                "datapoint are too few to fit the Pareto k-hat diagnostic; use --num-samples 100 or more")
    if share == 0:
        return None
    return (f"k-hat > {KHAT_THRESHOLD} for {share:.0%} of the datapoints (max {result.get('khat_max'):.2f}) even "
            "with the proposal fitted to each datapoint: their weights are heavy-tailed and their estimates may be "
            f"low; raise --num-samples (now {result.get('num_samples')}) or cross-check with --estimator ais")


def _warn_if_other_data(run_dir, data):
    saved = saved_fingerprint(run_dir)
    if saved is not None and not same_data(saved, data_fingerprint(data)):
        warnings.warn(f"the data differ from those the run in {run_dir} was trained on (then: {describe_fingerprint(saved)}; "
                      f"now: {describe_fingerprint(data_fingerprint(data))}); the scores describe other data. Restore the "
                      "original data files to evaluate the run on its own data", RuntimeWarning, stacklevel=3)
