"""Choosing the number of clusters K by the held-out marginal likelihood (guide 11).

``log p(x)`` with every cluster summed out is what the likelihood says about K: a model with too few
clusters fits the data worse, one with too many spends prior mass on clusters it does not need. The
sweep trains one :class:`~pyro_gmvae.estimator.GMVAEClusterer` per K and seed on a seeded share of the
data and scores the rest, held out, by the reliable importance sampler (``estimate_log_likelihood``'s
``"is"``) and by the ELBO, the bound training maximises.

>>> from pyro_gmvae import load_dataset
>>> data = load_dataset("synthetic", num_datapoints=200)
>>> rows = sweep_num_clusters(data, num_clusters=(2, 3), seeds=(0,), num_samples=20, epochs=1, pretrain_epochs=0,
...                           init_warmup_epochs=0, progress=False)
>>> [r["num_clusters"] for r in rows], choose_num_clusters(rows) in (2, 3)
([2, 3], True)
"""

import dataclasses
import math
import time

import numpy as np
import torch

from .data import Dataset, from_tensor
from .data.binarize import binarize_static
from .errors import ConfigError, check_positive
from .evaluation import elbo_per_datapoint, estimate_log_likelihood

__all__ = ["choose_num_clusters", "split_held_out", "summarise_sweep", "sweep_num_clusters"]


def split_held_out(data, share=0.2, seed=0):
    """``(train, held_out)``: a seeded random split of a :class:`~pyro_gmvae.data.Dataset` (or of an array, as
    one), ``share`` of the
    rows held out (the same rows for every K and training seed)."""
    if not 0 < share < 1:
        raise ConfigError(f"held_out must lie in (0, 1), got {share!r}; pass e.g. held_out=0.2")
    if not isinstance(data, Dataset):  # an array, a tensor or a DataFrame, as GMVAEClusterer.fit takes
        data = from_tensor(data if isinstance(data, torch.Tensor) else np.asarray(data))
    n = data.num_datapoints
    num_held = int(round(share * n))
    if num_held < 1 or num_held >= n:
        raise ConfigError(f"holding out {share:g} of {n} rows leaves {n - num_held} to train on and {num_held} to "
                          "score; use more data or another share")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(int(seed)))
    held, kept = order[:num_held].sort().values, order[num_held:].sort().values

    def part(rows):
        return dataclasses.replace(data, x=data.x[rows], y=None if data.y is None else data.y[rows])

    return part(kept), part(held)


def sweep_num_clusters(data, num_clusters=(5, 10, 15, 20, 30), seeds=(0, 1, 2), *, held_out=0.2, split_seed=0,
                       estimator="is", num_samples=500, elbo_samples=100, log=None, **params):
    """One row per (K, seed): a ``GMVAEClusterer(num_clusters=K, seed=seed, **params)`` fitted on the training
    share of ``data`` (a :class:`~pyro_gmvae.data.Dataset`, whose name picks the defaults, or an ``(N, D)`` array
    or tensor), scored on the
    held-out rows by ``estimator`` (``num_samples`` draws per row) and by the ELBO (``elbo_samples`` draws).
    A run trained with ``binarize`` is scored on the static binary draw of the held-out rows. Each row:
    ``num_clusters``, ``seed``, ``log_likelihood`` (mean nats per held-out row) with ``log_likelihood_stderr``
    and ``khat_share_above_0_7``, ``elbo``, ``num_used_clusters`` and ``seconds``. ``log`` (e.g. ``print``)
    gets a line per row."""
    from .estimator import GMVAEClusterer  # scikit-learn's BaseEstimator: imported on use, not with the package

    ks, seeds = list(num_clusters), [int(s) for s in seeds]
    for k in ks:
        check_positive("num_clusters", k, integer=True)
    if not ks or not seeds:
        raise ConfigError("give at least one number of clusters and one seed")
    train, test = split_held_out(data, held_out, split_seed)
    x_test = binarize_static(test.x) if params.get("binarize") else test.x
    rows = []
    for k in ks:
        for seed in seeds:
            start = time.perf_counter()
            clusterer = GMVAEClusterer(num_clusters=k, seed=seed, **params).fit(train)
            torch.manual_seed(seed)
            result = estimate_log_likelihood(clusterer.model_, clusterer.guide_, x_test, estimator,
                                             num_samples=num_samples)
            summary = result.summary()
            with torch.no_grad():
                elbo = elbo_per_datapoint(clusterer.model_, clusterer.guide_, x_test, num_samples=elbo_samples)
            last = clusterer.history_[-1] if clusterer.history_ else {}
            rows.append({"num_clusters": k, "seed": seed, "log_likelihood": summary["log_likelihood"],
                         "log_likelihood_stderr": summary["log_likelihood_stderr"],
                         "khat_share_above_0_7": summary.get("khat_share_above_0_7"),
                         "elbo": float(elbo.double().mean()), "num_used_clusters": last.get("num_used_clusters"),
                         "seconds": round(time.perf_counter() - start, 1)})
            if log is not None:
                r = rows[-1]
                log(f"K={k} seed={seed}: held-out log p(x) {r['log_likelihood']:.3f}, ELBO {r['elbo']:.3f}, "
                    f"k-hat > 0.7 for {r['khat_share_above_0_7'] or 0:.1%}, {r['seconds']:.0f} s")
    return rows


def summarise_sweep(rows, key="log_likelihood"):
    """``{K: (mean, std over seeds, number of seeds)}`` of ``key`` (``log_likelihood`` or ``elbo``)."""
    out = {}
    for k in sorted({r["num_clusters"] for r in rows}):
        values = np.array([r[key] for r in rows if r["num_clusters"] == k], dtype=float)
        out[k] = (float(values.mean()), float(values.std(ddof=1)) if len(values) > 1 else math.nan, len(values))
    return out


def choose_num_clusters(rows, key="log_likelihood"):
    """The K whose mean ``key`` over seeds (``log_likelihood``: held-out ``log p(x)``; or ``elbo``) is highest."""
    if not rows:
        raise ConfigError("no sweep rows to choose from; run sweep_num_clusters first")
    means = summarise_sweep(rows, key)
    return max(means, key=lambda k: means[k][0])

