"""A scikit-learn style front: :class:`GMVAEClusterer` with ``fit``, ``predict``, ``predict_proba``,
``transform``, ``score``, ``sample``, ``save`` and ``load``.

It adds no machinery of its own: ``fit`` is :func:`~pyro_gmvae.runs.train_run` (the CLI's training,
into a run folder of the same format), the defaults are :mod:`pyro_gmvae.defaults` (the CLI's), and
each method calls the functional API (:func:`~pyro_gmvae.evaluation.responsibilities.responsibilities`,
:func:`~pyro_gmvae.evaluation.marginal.elbo_per_datapoint`, the guide's ``site_dists``). Inputs are
tensors or numpy arrays ``(N, D)``; outputs are numpy arrays.

>>> import torch
>>> from pyro_gmvae import GMVAEClusterer
>>> x = torch.rand(60, 6)
>>> clusterer = GMVAEClusterer(num_clusters=3, latent_dim=2, network="toy", epochs=1, pretrain_epochs=1,
...                            batch_size=30, progress=False).fit(x)
>>> clusterer.predict_proba(x).shape, clusterer.transform(x).shape
((60, 3), (60, 2))
"""

import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from .errors import CheckpointError, ConfigError, DataError
from .sites import LATENT


class GMVAEClusterer:
    """Fit a deep clustering model (VaDE by default) to data and cluster new data with it.

    :param model: ``"vade"`` (default, unless the preset names another), ``"gmvae"``, ``"hierarchical"``,
        ``"vae"`` or a registered model.
    :param num_clusters: K (default: the number of distinct labels given to ``fit``, else 10).
    :param dataset: whose defaults to start from (``"digits"``, ``"synthetic"``, ``"mnist"``...; default:
        the name of a Dataset passed to ``fit``, else ``"file"``, the CLI's defaults for data of one's own);
        see :mod:`pyro_gmvae.defaults`.
    :param preset: the papers' settings (``"vade-mnist"``...), as ``--preset``.
    :param run_dir: the run folder ``fit`` trains into (default: a temporary folder, removed with the
        estimator; keep a copy with ``save``).
    :param progress: show progress bars and phase lines while fitting.
    :param settings: any field of :class:`~pyro_gmvae.config.ModelConfig` or
        :class:`~pyro_gmvae.config.TrainConfig` (``epochs``, ``lr``, ``latent_dim``, ``network``...).
    """

    def __init__(self, model=None, num_clusters=None, *, dataset=None, preset=None, run_dir=None,
                 progress=True, **settings):
        from .defaults import MODEL_FIELDS, TRAIN_FIELDS

        unknown = sorted(set(settings) - set(MODEL_FIELDS) - set(TRAIN_FIELDS) - {"data_dim"})
        if unknown:
            raise ConfigError(f"GMVAEClusterer has no settings {unknown}; choose among the fields of ModelConfig "
                              f"and TrainConfig: {', '.join(sorted({*MODEL_FIELDS, *TRAIN_FIELDS} - {'model'}))}")
        self.model_name, self.num_clusters, self.dataset, self.preset = model, num_clusters, dataset, preset
        self.run_dir = None if run_dir is None else Path(run_dir)
        self._temporary = None
        self.progress, self.settings = progress, dict(settings)
        self.model_ = self.guide_ = self.model_config_ = self.train_config_ = None
        self.history_ = []

    # -- fitting and persistence ------------------------------------------------------------------
    def fit(self, X, y=None, *, overwrite=False, data_spec=None):
        """Train on ``X`` (``(N, D)`` tensor or array, or a :class:`~pyro_gmvae.data.Dataset`); labels ``y``
        are only used to report accuracy per epoch. A second ``fit`` into the same ``run_dir`` needs
        ``overwrite=True``. ``data_spec`` tells ``pyro-gmvae evaluate``/``plot`` how to load the data again
        (``load_dataset``'s arguments, e.g. ``{"dataset": "synthetic", "num_datapoints": 500}``); by default
        the run records only the data set's name. Returns ``self``."""
        import dataclasses

        from .config import ModelConfig, TrainConfig
        from .data import DATASETS, Dataset, from_tensor
        from .runs import read_metrics, train_run

        data = X if isinstance(X, Dataset) else from_tensor(X, y, likelihood=self.settings.get("likelihood"))
        name = self.dataset or (data.name if data.name in DATASETS else "file")
        given = dict(self.settings)
        if self.model_name is not None:
            given["model"] = self.model_name
        if self.num_clusters is not None:
            given["num_clusters"] = self.num_clusters
        # the data's size, likelihood and classes fill what neither the settings nor the preset give
        model_config = ModelConfig.for_dataset(dataclasses.replace(data, name=name), self.preset,
                                               **{k: v for k, v in given.items() if k in _fields(ModelConfig)})
        train_config = TrainConfig.for_dataset(name, self.preset,
                                               **{k: v for k, v in given.items() if k in _fields(TrainConfig)})
        if self.run_dir is None:  # removed with the estimator; save() keeps a copy
            self._temporary = tempfile.TemporaryDirectory(prefix="pyro-gmvae-")
            self.run_dir = Path(self._temporary.name)
        trainer = train_run(model_config, train_config, data, self.run_dir,
                            overwrite=overwrite or self._temporary is not None,
                            data_spec=data_spec or {"dataset": data.name},
                            progress=self.progress, log=print if self.progress else (lambda *a: None))
        self.model_, self.guide_ = trainer.model.eval(), trainer.guide.eval()
        self.model_config_, self.train_config_ = model_config, train_config
        self.history_ = read_metrics(self.run_dir)
        return self

    def save(self, run_dir):
        """Copy the run folder (config.json, metrics.jsonl, checkpoint.pt...) to ``run_dir``, which
        ``load`` and every ``pyro-gmvae`` command read. Returns the path."""
        from .runs import CHECKPOINT, CONFIG, METRICS, PRETRAINED

        self._check_fitted()
        dst = Path(run_dir)
        if dst.resolve() == self.run_dir.resolve():
            return dst
        if (dst / CONFIG).exists() or (dst / CHECKPOINT).exists():
            raise ConfigError(f"{dst} already holds a run; choose another folder or delete it first")
        dst.mkdir(parents=True, exist_ok=True)
        for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED):
            if (self.run_dir / name).exists():
                shutil.copyfile(self.run_dir / name, dst / name)
        return dst

    @classmethod
    def load(cls, run_dir, device="cpu"):
        """The estimator of a run folder written by ``fit``/``save`` or by ``pyro-gmvae train``."""
        from .runs import load_run, read_metrics

        model, guide, model_config, train_config, _ = load_run(run_dir, device)
        settings = {k: v for k, v in {**model_config.to_dict(), **train_config.to_dict()}.items()
                    if k not in ("model", "num_clusters")}
        self = cls(model_config.model, model_config.num_clusters, run_dir=run_dir, progress=False, **settings)
        self.model_, self.guide_ = model, guide
        self.model_config_, self.train_config_ = model_config, train_config
        self.history_ = read_metrics(run_dir)
        return self

    # -- using the fitted model ---------------------------------------------------------------------
    def predict_proba(self, X):
        """``(N, K)`` posterior cluster probabilities ``p(cluster | x)``: every cluster enumerated, exact
        given the guide's mean of the continuous latents (:func:`~pyro_gmvae.responsibilities`)."""
        from .evaluation.responsibilities import responsibilities

        self._check_clusters()
        return _numpy(responsibilities(self.model_, self.guide_, self._x(X)))

    def predict(self, X):
        """``(N,)`` the most probable cluster of each row."""
        return self.predict_proba(X).argmax(-1)

    def fit_predict(self, X, y=None):
        return self.fit(X, y).predict(X)

    @torch.no_grad()
    def transform(self, X):
        """``(N, latent_dim)`` the guide's mean of ``z`` (the embedding)."""
        x = self._x(X)
        return _numpy(torch.cat([self.guide_.site_dists(x[i:i + 1000])[LATENT].mean
                                 for i in range(0, x.shape[0], 1000)]))

    def score_samples(self, X, num_samples=10, *, seed=0):
        """``(N,)`` the ELBO of each row in nats, averaged over ``num_samples`` guide draws (clusters
        summed out exactly), seeded without touching the global random state."""
        from .evaluation.marginal import elbo_per_datapoint

        x = self._x(X)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            return _numpy(elbo_per_datapoint(self.model_, self.guide_, x, num_samples=num_samples))

    def score(self, X, y=None, num_samples=10, *, seed=0):
        """The mean ELBO per datapoint of ``X`` in nats (higher is better)."""
        return float(self.score_samples(X, num_samples, seed=seed).mean())

    @torch.no_grad()
    def sample(self, n=1, cluster=None, *, seed=None):
        """``(X, clusters)``: ``n`` decoded prior draws ``(n, D)`` (Bernoulli probabilities or Normal locs,
        as ``pyro-gmvae sample``) and their clusters ``(n,)``. With ``cluster=k`` every draw comes from
        ``p(z | cluster = k)``; without, from the whole prior."""
        import pyro
        from pyro import poutine

        from .evaluation.generation import sample_latents_per_cluster
        from .sites import DATA_PLATE

        self._check_fitted()
        if seed is not None:
            pyro.set_rng_seed(seed)
        prior = self.model_.prior
        if cluster is not None:
            self._check_clusters()
            k = self.model_.num_clusters
            if not (isinstance(cluster, (int, np.integer)) and 0 <= cluster < k):
                raise ConfigError(f"cluster must be an integer in [0, {k}), got {cluster!r}")
            z = sample_latents_per_cluster(prior, n)[int(cluster)]
            labels = np.full(n, int(cluster))
        else:
            with pyro.plate(DATA_PLATE, n):
                trace = poutine.trace(prior).get_trace()
            z = trace.nodes["_RETURN"]["value"]
            site = self.model_.cluster_sites[-1] if self.model_.cluster_sites else None
            labels = None if site is None else _numpy(trace.nodes[site]["value"].reshape(n))
        return _numpy(self.model_.decoder.x_dist(z).mean), labels

    # -- checks -----------------------------------------------------------------------------------
    def _check_fitted(self):
        if self.model_ is None:
            raise CheckpointError("this GMVAEClusterer is not fitted yet; call fit(X) or GMVAEClusterer.load(run_dir)")

    def _check_clusters(self):
        self._check_fitted()
        if not self.model_.cluster_sites:
            raise ConfigError(f"the model {self.model_config_.model!r} has no clusters; fit a clustering model "
                              "such as 'vade' or 'gmvae'")

    def _x(self, X):
        from .data import from_tensor

        self._check_fitted()
        x = X.x if hasattr(X, "x") else from_tensor(X, likelihood=self.model_config_.likelihood).x
        if x.shape[-1] != self.model_config_.data_dim:
            raise DataError(f"the data has {x.shape[-1]} features but the model expects "
                            f"{self.model_config_.data_dim}; pass rows like the training data")
        param = next(iter(self.model_.parameters()))
        return x.to(device=param.device, dtype=param.dtype)

    def __repr__(self):
        state = "fitted" if self.model_ is not None else "not fitted"
        return f"GMVAEClusterer(model={self.model_name!r}, num_clusters={self.num_clusters}, {state}, " \
               f"run_dir={str(self.run_dir) if self.run_dir else None!r})"


def _fields(cls):
    import dataclasses

    return {f.name for f in dataclasses.fields(cls)}


def _numpy(t):
    return t.detach().cpu().numpy()
