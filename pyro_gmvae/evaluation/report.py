"""Evaluate a run folder: ELBO, importance-weighted log-likelihood with PSIS diagnostics, and
clustering scores; the result goes to ``RUN_DIR/eval.json`` (``pyro-gmvae evaluate``)."""

import warnings
from pathlib import Path

import pyro
import torch

from ..data.datasets import check_num_features
from ..errors import ConfigError
from ..runs import (check_writable, checkpoint_source, data_fingerprint, describe_fingerprint, finite_or_none,
                    load_run, load_run_data, memory_bytes, same_data, saved_fingerprint, write_json)
from .marginal import estimate_marginal_likelihood
from .metrics import active_clusters, cluster_information, clustering_scores, most_confident_accuracy, used_clusters
from .responsibilities import cluster_marginals

EVAL = "eval.json"


def cluster_shares(resp):
    """Each cluster's share of the data, ``(K,)``: the mean of the ``(N, K)`` responsibilities."""
    return resp.mean(0)


@torch.no_grad()
def evaluate_run(run_dir, num_samples=100, split=None, device="cpu", batch_size=500, *, seed=0, progress=False,
                 save=True):
    """Evaluate the checkpoint in ``run_dir`` on its data set; returns the dict written to ``eval.json``.

    Keys: ``elbo`` and ``log_likelihood`` (means per datapoint, nats; the same ``num_samples``
    guide draws give both), ``log_likelihood_stderr`` (std over datapoints / sqrt(N)), ``khat_max``
    and ``khat_share_above_0_7`` (PSIS; None when ``num_samples`` is too small to fit a tail),
    ``log_likelihood_reliable`` (False when any k-hat exceeds 0.7, None when unchecked; see
    :func:`~pyro_gmvae.evaluation.marginal.reliability_note`), ``num_samples``, ``num_datapoints``,
    ``split``, ``epoch`` and ``checkpoint_sha256`` (the checkpoint it was computed from); for a model with
    clusters ``cluster_shares``,
    ``num_active_clusters``, ``num_used_clusters`` and ``cluster_information`` (the same with a
    ``super_cluster_`` prefix for the coarse level of a hierarchy), and with labels ``acc``,
    ``acc_many_to_one``, ``nmi``, ``ari``.

    Everything that could stop it is checked before the computation: the folder must be writable
    and one batch of log-weights must fit in memory. Data that differ from those the run was trained
    on (same split) give a ``RuntimeWarning``; ``progress`` shows a bar over the batches. With
    ``save=False`` nothing is written (and the folder need not be writable).
    """
    model, guide, model_config, _, data_spec = load_run(run_dir, device)
    if save:
        check_writable(run_dir, "run folder")  # before the work, which an unwritable eval.json would lose
    source = checkpoint_source(run_dir)
    data = load_run_data(run_dir, split, device)
    check_num_features(data.data_dim, model_config.data_dim, "evaluate on the data set the run was trained on")
    _check_block_memory(num_samples, min(batch_size, data.num_datapoints), device)
    if split is None or split == (data_spec.get("split") or "all"):
        _warn_if_other_data(run_dir, data)
    pyro.set_rng_seed(seed)
    result = estimate_marginal_likelihood(model, guide, data.x, num_samples, batch_size,
                                          progress=progress).summary()
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


def _check_block_memory(num_samples, batch, device):
    """Refuse a (num_samples x batch) block of log-weights (kept whole for PSIS) larger than the memory."""
    need = num_samples * batch * 12  # float32 log-weights and their float64 copy for PSIS
    have = memory_bytes(device)
    if have is not None and need > have // 2:
        raise ConfigError(f"--num-samples {num_samples} with batches of {batch} datapoints needs about "
                          f"{need / 2 ** 30:.1f} GiB of log-weights per batch but {device} has "
                          f"{have / 2 ** 30:.1f} GiB; lower --batch-size or --num-samples")


def _warn_if_other_data(run_dir, data):
    saved = saved_fingerprint(run_dir)
    if saved is not None and not same_data(saved, data_fingerprint(data)):
        warnings.warn(f"the data differ from those the run in {run_dir} was trained on (then: {describe_fingerprint(saved)}; "
                      f"now: {describe_fingerprint(data_fingerprint(data))}); the scores describe other data. Restore the "
                      "original data files to evaluate the run on its own data", RuntimeWarning, stacklevel=3)
