"""Evaluate a run folder: ELBO, importance-weighted log-likelihood with PSIS diagnostics, and
clustering scores; the result goes to ``RUN_DIR/eval.json`` (``pyro-gmvae evaluate``)."""

from pathlib import Path

import pyro
import torch

from ..errors import DataError
from .marginal import estimate_marginal_likelihood
from .metrics import active_clusters, cluster_information, clustering_scores, most_confident_accuracy, used_clusters
from .responsibilities import cluster_marginals

EVAL = "eval.json"


def cluster_shares(resp):
    """Each cluster's share of the data, ``(K,)``: the mean of the ``(N, K)`` responsibilities."""
    return resp.mean(0)


def load_run_data(run_dir, split=None, device="cpu"):
    """The data set a run was trained on (``split`` overrides the training split)."""
    from ..cli import load_data
    from ..runs import read_config

    _, _, data_spec = read_config(run_dir)
    spec = dict(data_spec)
    if split is not None:
        spec["split"] = split
    return load_data(spec, device)


@torch.no_grad()
def evaluate_run(run_dir, num_samples=100, split=None, device="cpu", batch_size=500, *, seed=0):
    """Evaluate the checkpoint in ``run_dir`` on its data set; returns the dict written to ``eval.json``.

    Keys: ``elbo`` and ``log_likelihood`` (means per datapoint, nats; the same ``num_samples``
    guide draws give both), ``log_likelihood_stderr`` (std over datapoints / sqrt(N)), ``khat_max``
    and ``khat_share_above_0_7`` (PSIS; None when ``num_samples`` is too small to fit a tail),
    ``num_samples``, ``num_datapoints``, ``split``; for a model with clusters ``cluster_shares``,
    ``num_active_clusters``, ``num_used_clusters`` and ``cluster_information`` (the same with a
    ``super_cluster_`` prefix for the coarse level of a hierarchy), and with labels ``acc``,
    ``acc_many_to_one``, ``nmi``, ``ari``.
    """
    from ..runs import load_run, write_json

    model, guide, model_config, _, data_spec = load_run(run_dir, device)
    data = load_run_data(run_dir, split, device)
    if data.data_dim != model_config.data_dim:
        raise DataError(f"the data has {data.data_dim} features but the run's model expects "
                        f"{model_config.data_dim}; evaluate on the data set the run was trained on")
    pyro.set_rng_seed(seed)
    result = estimate_marginal_likelihood(model, guide, data.x, num_samples, batch_size).summary()
    result["split"] = split or data_spec.get("split") or "all"
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
    write_json(Path(run_dir) / EVAL, result)
    return result
