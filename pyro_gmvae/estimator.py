"""A scikit-learn estimator: :class:`GMVAEClusterer`, a clusterer and a transformer that ``Pipeline``,
``GridSearchCV`` and ``clone`` accept.

It adds no machinery of its own: ``fit`` is :func:`~pyro_gmvae.runs.train_run` (the CLI's training, into
a run folder of the same format), the defaults are :mod:`pyro_gmvae.defaults` (the CLI's), and each
method calls the functional API (:func:`~pyro_gmvae.evaluation.responsibilities.responsibilities`,
:func:`~pyro_gmvae.evaluation.marginal.elbo_per_datapoint`, the guide's ``site_dists``). Inputs are
array-likes, pandas DataFrames, tensors or a :class:`~pyro_gmvae.data.Dataset`; outputs are numpy arrays.

The fitted model lives in the estimator (its networks and the run folder's contents, in memory), so a
pickled or deep-copied estimator carries it, and :meth:`GMVAEClusterer.save` writes the run folder that
every ``pyro-gmvae`` command reads.

>>> import torch
>>> from pyro_gmvae import GMVAEClusterer
>>> x = torch.rand(60, 6)
>>> clusterer = GMVAEClusterer(num_clusters=3, latent_dim=2, network="toy", epochs=1, pretrain_epochs=1,
...                            batch_size=30, progress=False).fit(x)
>>> clusterer.predict_proba(x).shape, clusterer.transform(x).shape, clusterer.labels_.shape
((60, 3), (60, 2), (60,))
"""

import dataclasses
import os
import tempfile
from pathlib import Path

import numpy as np
import pyro
import torch
from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, ClusterMixin, TransformerMixin
from sklearn.utils.validation import check_array, check_is_fitted, validate_data

from .config import ModelConfig, TrainConfig
from .data import DATASETS, Dataset, from_tensor
from .defaults import MODEL_FIELDS, TRAIN_FIELDS, resolve
from .errors import CheckpointError, ConfigError, DataError, check_choice, check_positive
from .evaluation.generation import sample_latents_per_cluster
from .evaluation.marginal import elbo_per_datapoint
from .evaluation.responsibilities import responsibilities
from .inference.amortized import encode_mean
from .inference.callbacks import check_callbacks
from .models import build
from .plugins import import_plugins
from .runs import (CONFIG, FORMAT, PRETRAINED, atomic_write_bytes, check_writable, config_record, holds_run,
                   load_checkpoint, load_run, read_config, read_metrics, rewrite_metrics, save_checkpoint, train_run,
                   trained_range, write_json)
from .sites import DATA_PLATE

#: The most values ``sample`` decodes at once (n x data_dim), about 1 GiB of float32.
MAX_SAMPLE_VALUES = 2 ** 28

_NOT_FITTED = "this %(name)s is not fitted yet; call fit(X) first, or GMVAEClusterer.load(run_dir)"


class GMVAEClusterer(ClassNamePrefixFeaturesOutMixin, TransformerMixin, ClusterMixin, BaseEstimator):
    """Fit a deep clustering model (VaDE by default) to data and cluster new data with it.

    Every parameter is stored as given; ``None`` (the default of each setting) means the library's
    default: the data set's (:data:`~pyro_gmvae.defaults.DATASET_DEFAULTS`), then the preset's, then
    the field's default in :class:`~pyro_gmvae.config.ModelConfig` or :class:`~pyro_gmvae.config.TrainConfig`,
    exactly as ``pyro-gmvae train`` resolves its flags. The settings are checked when ``fit`` starts,
    before any work.

    :param model: ``"vade"`` (default, unless the preset names another), ``"gmvae"``, ``"hierarchical"``,
        ``"vae"`` or a registered model.
    :param num_clusters: K (default: the number of distinct labels given to ``fit``, else 10).
    :param dataset: whose defaults to start from (``"digits"``, ``"synthetic"``, ``"mnist"``...; default:
        the name of a Dataset passed to ``fit``, else ``"file"``, the CLI's defaults for data of one's own).
    :param preset: the papers' settings (``"vade-mnist"``...), as ``--preset``.
    :param run_dir: a folder ``fit`` trains into and leaves behind (default: a temporary folder, removed
        once the model is read back). Leave it None under ``clone``/``GridSearchCV``, whose copies would
        share it, and keep a model with :meth:`save`.
    :param progress: show progress bars and phase lines while fitting.
    :param tensorboard: a folder to write TensorBoard logs into (:mod:`pyro_gmvae.tracking`; needs the
        ``pyro-gmvae[tensorboard]`` extra), as ``--tensorboard``.
    :param callbacks: objects called at the events of training (:mod:`pyro_gmvae.inference.callbacks`), e.g.
        an MLflow logger.

    The other parameters are the fields of the same names of ``ModelConfig`` (``num_super_clusters``
    ... ``cluster_inference``) and ``TrainConfig`` (``epochs`` ... ``compute_dtype``); see their docs.

    Fitted attributes: ``model_`` and ``guide_`` (the Pyro modules, in eval mode), ``model_config_``,
    ``train_config_``, ``history_`` (the rows of ``metrics.jsonl``), ``labels_`` (clusters of the training
    rows), ``n_features_in_`` and, for a DataFrame, ``feature_names_in_``.
    """

    def __init__(self, model=None, num_clusters=None, *, dataset=None, preset=None, run_dir=None, progress=True,
                 tensorboard=None, callbacks=None,
                 # ModelConfig's fields (defaults.MODEL_FIELDS)
                 num_super_clusters=None, latent_dim=None, noise_dim=None, prior_hidden_dim=None, prior=None,
                 guide=None, likelihood=None, network=None, fixed_weights=None, cluster_inference=None,
                 num_pseudo_inputs=None, flow_layers=None,
                 # TrainConfig's fields (defaults.TRAIN_FIELDS)
                 epochs=None, batch_size=None, lr=None, lr_decay=None, lr_decay_every=None, min_lr=None,
                 adam_eps=None, num_particles=None, objective=None, kl_warmup_epochs=None, jit=None, seed=None,
                 pretrain_epochs=None, pretrain_lr=None, pretrain_recipe=None, pretrain_batch_size=None, init=None,
                 umap_epochs=None, umap_neighbors=None, init_guide_scale=None, init_warmup_epochs=None,
                 init_warmup_label_weight=None, free_bits=None, free_bits_site=None, free_bits_group=None,
                 temperature_start=None, temperature_end=None, temperature_decay=None, device=None, compute_dtype=None,
                 binarize=None):
        self.model, self.num_clusters, self.dataset, self.preset = model, num_clusters, dataset, preset
        self.run_dir, self.progress = run_dir, progress
        self.tensorboard, self.callbacks = tensorboard, callbacks
        self.num_super_clusters, self.latent_dim, self.noise_dim = num_super_clusters, latent_dim, noise_dim
        self.prior_hidden_dim, self.prior, self.guide, self.likelihood = prior_hidden_dim, prior, guide, likelihood
        self.network, self.fixed_weights, self.cluster_inference = network, fixed_weights, cluster_inference
        self.num_pseudo_inputs, self.flow_layers = num_pseudo_inputs, flow_layers
        self.objective, self.kl_warmup_epochs = objective, kl_warmup_epochs
        self.epochs, self.batch_size, self.lr, self.lr_decay = epochs, batch_size, lr, lr_decay
        self.lr_decay_every, self.min_lr, self.adam_eps = lr_decay_every, min_lr, adam_eps
        self.num_particles, self.jit, self.seed = num_particles, jit, seed
        self.pretrain_epochs, self.pretrain_lr, self.pretrain_recipe = pretrain_epochs, pretrain_lr, pretrain_recipe
        self.pretrain_batch_size, self.init, self.init_guide_scale = pretrain_batch_size, init, init_guide_scale
        self.umap_epochs, self.umap_neighbors = umap_epochs, umap_neighbors
        self.init_warmup_epochs, self.init_warmup_label_weight = init_warmup_epochs, init_warmup_label_weight
        self.free_bits_site, self.free_bits_group = free_bits_site, free_bits_group
        self.temperature_start, self.temperature_end = temperature_start, temperature_end
        self.temperature_decay, self.device, self.compute_dtype = temperature_decay, device, compute_dtype
        self.binarize, self.free_bits = binarize, free_bits

    # -- fitting ------------------------------------------------------------------------------------
    def fit(self, X, y=None, *, overwrite=False, data_spec=None):
        """Train on ``X``: an ``(N, D)`` array-like, DataFrame or tensor, or a :class:`~pyro_gmvae.data.Dataset`.
        Labels ``y`` (any hashable values) are only used to report accuracy per epoch and to choose K
        when ``num_clusters`` is None. With ``run_dir`` set, a folder that already holds a run needs
        ``overwrite=True``. ``data_spec`` tells ``pyro-gmvae evaluate``/``plot`` how to load the data again
        (``load_dataset``'s arguments, e.g. ``{"dataset": "synthetic", "num_datapoints": 500}``); by
        default the run records only the data set's name. Returns ``self``."""
        callbacks = check_callbacks(self.callbacks)
        if self.tensorboard is not None:  # the package and the folder, before any work
            from .tracking import TensorBoardCallback

            callbacks.append(TensorBoardCallback(self.tensorboard, what="tensorboard="))
        if self.dataset is not None:  # a name that picks no defaults would be a silent no-op
            check_choice("dataset", self.dataset, DATASETS)
        data = self._training_data(X, y)
        name = self.dataset or (data.name if data.name in DATASETS else "file")
        # numpy scalars (a grid of np.arange values) become Python's, which config.json can hold
        given = {k: v.item() if isinstance(v, np.generic) else v for k, v in self.get_params().items()}
        settings = _fields(ModelConfig) | _fields(TrainConfig)
        # one resolution of model and training settings together, as pyro-gmvae train's flags
        model_kw, train_kw, _ = resolve({**{k: v for k, v in given.items() if k in settings}, "dataset": name},
                                        self.preset)
        # the data's size, likelihood and classes fill what neither the settings nor the preset give
        model_config = ModelConfig.for_dataset(dataclasses.replace(data, name=name), **model_kw)
        train_config = TrainConfig(**train_kw)
        if self.run_dir is not None:
            if not isinstance(self.run_dir, (str, os.PathLike)):
                raise ConfigError(f"run_dir must be a folder path (str or Path) or None, got {self.run_dir!r}")
            if holds_run(self.run_dir) and not overwrite:
                raise ConfigError(f"run_dir {self.run_dir} already holds a run; pass fit(..., overwrite=True) to "
                                  "replace it, or another run_dir (or None, and keep the model with save())")
        log = print if self.progress else (lambda *a: None)
        spec = data_spec or {"dataset": data.name}
        if self.run_dir is None:
            with tempfile.TemporaryDirectory(prefix="pyro-gmvae-") as tmp:
                trainer = train_run(model_config, train_config, data, Path(tmp) / "run", data_spec=spec,
                                    progress=self.progress, log=log, callbacks=callbacks)
                self._read_back(trainer, Path(tmp) / "run")
        else:
            trainer = train_run(model_config, train_config, data, self.run_dir, data_spec=spec, overwrite=overwrite,
                                progress=self.progress, log=log, callbacks=callbacks)
            self._read_back(trainer, Path(self.run_dir))
        x = data.x.to(torch.get_default_dtype())
        self._train_range = (float(x.min()), float(x.max()))
        if self.model_.cluster_sites:
            param = next(iter(self.model_.parameters()))
            self.labels_ = self._proba(data.x.to(device=param.device, dtype=param.dtype)).argmax(-1)
        elif hasattr(self, "labels_"):  # a model without clusters (a refit with model="vae") has no labels
            del self.labels_
        return self

    def _training_data(self, X, y):

        if isinstance(X, Dataset):
            if y is not None:
                raise DataError("fit takes its labels from the Dataset; pass fit(dataset) without y, or the "
                                "arrays fit(dataset.x, y)")
            self.n_features_in_ = X.data_dim
            if hasattr(self, "feature_names_in_"):
                del self.feature_names_in_
            data = X
        else:
            if isinstance(X, torch.Tensor):
                X = X.detach().cpu().numpy()
            if isinstance(y, torch.Tensor):
                y = y.detach().cpu().numpy()
            if y is None:
                X = validate_data(self, X, dtype=[np.float64, np.float32])
            else:
                X, y = validate_data(self, X, y, dtype=[np.float64, np.float32], y_numeric=False)
                y = np.unique(y, return_inverse=True)[1].reshape(-1)  # labels of any kind -> 0..C-1
            data = from_tensor(_as_tensor(X, "X"), y, likelihood=self.likelihood)
        if data.num_datapoints < 2:
            raise DataError(f"fit needs at least 2 datapoints, got {data.num_datapoints} sample; pass more rows "
                            "(at least one per cluster)")
        return data

    def _read_back(self, trainer, run_dir):
        """Hold the run folder's contents (the checkpoint, the pretrained weights, config.json's record,
        the metrics) in memory, so that neither pickling nor a removed folder loses the model."""
        model_config, train_config, data_spec = read_config(run_dir)
        pretrained = load_checkpoint(run_dir / PRETRAINED) if (run_dir / PRETRAINED).exists() else None
        self._set_model(trainer.model, trainer.guide, load_checkpoint(run_dir), pretrained,
                        config_record(model_config, train_config, data_spec))
        self.model_config_, self.train_config_ = model_config, train_config
        self.history_ = read_metrics(run_dir)

    def _set_model(self, model, guide, checkpoint, pretrained, record):
        self.model_, self.guide_ = model.eval(), guide.eval()
        # the checkpoint's weights are the live modules' (no second copy; save() writes what the model is)
        self._checkpoint = {**checkpoint, "model": self.model_.state_dict(), "guide": self.guide_.state_dict()}
        self._pretrained, self._record = pretrained, record

    # -- persistence --------------------------------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ returns the instance's own dict
        # the modules are rebuilt from the config and the checkpoint's state dicts (no temporary paths)
        state.pop("model_", None)
        state.pop("guide_", None)
        return state

    def __setstate__(self, state):
        super().__setstate__(state)
        if "_checkpoint" in state:

            import_plugins(self._record.get("plugins", []))
            with torch.random.fork_rng():  # building initialises weights: leave the caller's random state alone
                model, guide = build(self.model_config_)
            model.load_state_dict(self._checkpoint["model"])
            guide.load_state_dict(self._checkpoint["guide"])
            device = next(iter(self._checkpoint["model"].values())).device  # where the pickled model was
            model, guide = model.to(device), guide.to(device)
            self._set_model(model, guide, self._checkpoint, self._pretrained, self._record)

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.transformer_tags.preserves_dtype = ["float32"]  # the networks compute in float32
        return tags

    @property
    def _n_features_out(self):
        return self.model_config_.latent_dim

    def save(self, run_dir):
        """Write the fitted model as a run folder (config.json, metrics.jsonl, checkpoint.pt, pretrained.pt)
        into ``run_dir``, a new or empty folder, which :meth:`load` and every ``pyro-gmvae`` command read
        (``--resume`` included). Returns the path."""

        dst = _folder(run_dir, "save")
        self._check_fitted()
        if dst.exists() and not dst.is_dir():
            raise ConfigError(f"save: {dst} is a file; pass a folder to hold the run (config.json, checkpoint.pt...)")
        if holds_run(dst):
            raise ConfigError(f"save: {dst} already holds a run; choose another folder, or delete that one first")
        if dst.is_dir() and any(dst.iterdir()):
            raise ConfigError(f"save: {dst} is not empty; choose a new or empty folder")
        check_writable(dst, "save: run_dir")
        dst.mkdir(parents=True, exist_ok=True)
        # the checkpoint last: a folder with config.json but no checkpoint reads as an unfinished run
        write_json(dst / CONFIG, self._record)
        rewrite_metrics(dst, self.history_)
        if self._pretrained is not None:
            atomic_write_bytes(dst / PRETRAINED, lambda f: torch.save({**self._pretrained, "format": FORMAT}, f))
        save_checkpoint(dst, {k: v for k, v in self._checkpoint.items() if k != "format"})
        return dst

    @classmethod
    def load(cls, run_dir, device="cpu", *, trust_plugins=False):
        """The fitted estimator of a run folder written by ``fit``/``save`` or by ``pyro-gmvae train``;
        its parameters are the run's settings, so ``clone`` of it trains the same way again.
        ``trust_plugins``: as :func:`~pyro_gmvae.runs.load_run` (the run's recorded plugin modules are
        imported only when imported already, declared as entry points, or trusted)."""

        run_dir = _folder(run_dir, "load")
        if not run_dir.is_dir():
            raise CheckpointError(f"load: {run_dir} is not a folder; pass the run folder that fit/save or "
                                  "pyro-gmvae train wrote")
        model, guide, model_config, train_config, data_spec = load_run(run_dir, device, trust_plugins=trust_plugins)
        settings = {**model_config.to_dict(), **train_config.to_dict()}
        self = cls(progress=False, **{k: settings[k] for k in (*MODEL_FIELDS, *TRAIN_FIELDS)})
        pretrained = load_checkpoint(run_dir / PRETRAINED) if (run_dir / PRETRAINED).exists() else None
        self._set_model(model, guide, load_checkpoint(run_dir), pretrained,
                        config_record(model_config, train_config, data_spec))
        self.model_config_, self.train_config_ = model_config, train_config
        self.history_ = read_metrics(run_dir)
        self.n_features_in_ = model_config.data_dim
        self._train_range = trained_range(run_dir)  # recorded in config.json's data fingerprint (None: older runs)
        return self

    # -- using the fitted model ---------------------------------------------------------------------
    def predict_proba(self, X):
        """``(N, K)`` posterior cluster probabilities ``p(cluster | x)``: every cluster enumerated, exact
        given the guide's mean of the continuous latents (:func:`~pyro_gmvae.responsibilities`)."""
        self._check_clusters()
        return self._proba(self._x(X))

    def _proba(self, x):

        return self._finite(_numpy(self._quietly(responsibilities, self.model_, self.guide_, x)), x,
                            "cluster probabilities")

    def predict(self, X):
        """``(N,)`` the most probable cluster of each row."""
        return self.predict_proba(X).argmax(-1)

    @torch.no_grad()
    def transform(self, X):
        """``(N, latent_dim)`` the guide's mean of ``z`` (the embedding)."""
        x = self._x(X)
        z = self._quietly(lambda: encode_mean(self.guide_, x))
        return self._finite(_numpy(z), x, "embedding")

    def score_samples(self, X, num_samples=10, *, seed=0):
        """``(N,)`` the ELBO of each row in nats, averaged over ``num_samples`` guide draws (clusters
        summed out exactly), seeded without touching the global random state."""

        x = self._x(X)
        with torch.random.fork_rng(devices=[x.device] if x.device.type == "cuda" else []):
            torch.manual_seed(seed)
            elbo = self._quietly(elbo_per_datapoint, self.model_, self.guide_, x, num_samples=num_samples)
        return self._finite(_numpy(elbo), x, "ELBO")

    def score(self, X, y=None, num_samples=10, *, seed=0):
        """The mean ELBO per datapoint of ``X`` in nats: a lower bound of the mean log-likelihood
        ``log p(x)``, higher is better, comparable across models of the same data (``y`` is ignored).
        ``GridSearchCV`` calls it on the held-out rows."""
        return float(self.score_samples(X, num_samples, seed=seed).mean())

    @torch.no_grad()
    def sample(self, n=1, cluster=None, *, seed=None):
        """``(X, clusters)``: ``n`` decoded prior draws ``(n, D)`` (Bernoulli probabilities or Normal locs,
        as ``pyro-gmvae sample``) and their clusters ``(n,)``. With ``cluster=k`` every draw comes from
        ``p(z | cluster = k)``; without, from the whole prior."""
        from pyro import poutine


        check_positive("n (the number of draws)", n, integer=True)
        self._check_fitted()
        if n * self.model_config_.data_dim > MAX_SAMPLE_VALUES:
            raise ConfigError(f"sample({n}) would decode {n * self.model_config_.data_dim:,} values (at most "
                              f"{MAX_SAMPLE_VALUES:,} at once); draw in batches of fewer samples")
        if seed is not None:
            check_positive("seed", seed, strict=False, integer=True, maximum=2 ** 32 - 1)
        prior = self.model_.prior
        if cluster is not None:
            self._check_clusters()
            k = self.model_.num_clusters
            if isinstance(cluster, bool) or not (isinstance(cluster, (int, np.integer)) and 0 <= cluster < k):
                raise ConfigError(f"cluster must be an integer in [0, {k}), got {cluster!r}")
        if seed is not None:
            pyro.set_rng_seed(seed)
        if cluster is not None:
            z = sample_latents_per_cluster(prior, n)[int(cluster)]
            labels = np.full(n, int(cluster))
        else:
            with pyro.plate(DATA_PLATE, n):
                trace = poutine.trace(prior).get_trace()
            z = trace.nodes["_RETURN"]["value"]
            site = self.model_.cluster_sites[-1] if self.model_.cluster_sites else None
            labels = None if site is None else _numpy(trace.nodes[site]["value"].reshape(n))
        return _numpy(self.model_.decoder.x_dist(z).mean), labels

    # -- checks -------------------------------------------------------------------------------------
    def _check_fitted(self):
        check_is_fitted(self, msg=_NOT_FITTED)

    def _check_clusters(self):
        self._check_fitted()
        if not self.model_.cluster_sites:
            raise ConfigError(f"the model {self.model_config_.model!r} has no clusters; fit a clustering model "
                              "such as 'vade' or 'gmvae'")

    def _x(self, X):
        """``X`` checked against the training data (width, column names, range) as a tensor on the model's
        device and dtype."""

        self._check_fitted()
        if isinstance(X, Dataset):
            X = X.x
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        array = check_array(X, dtype=[np.float64, np.float32])
        if array.shape[1] != self.n_features_in_:  # a DataError: the CLI's predict turns it into one line
            raise DataError(f"X has {array.shape[1]} features, but {type(self).__name__} is expecting "
                            f"{self.n_features_in_} features as input; pass rows like the training data")
        validate_data(self, X, reset=False, skip_check_array=True)  # the column names of a DataFrame
        X = array
        param = next(iter(self.model_.parameters()))
        x = _as_tensor(X, "X", param.dtype)
        if self.model_config_.likelihood == "bernoulli" and bool(((x < 0) | (x > 1)).any()):
            raise DataError(f"X has values in [{float(x.min()):g}, {float(x.max()):g}] but the model has a Bernoulli "
                            f"likelihood and was trained on values in {self._trained_on()}; scale X as the "
                            "training data were")
        return x.to(param.device)

    def _trained_on(self):
        rng = getattr(self, "_train_range", None)
        if rng is None:
            return "[0, 1]" if self.model_config_.likelihood == "bernoulli" else "a range the run does not record"
        return f"[{rng[0]:g}, {rng[1]:g}]"

    @staticmethod
    def _quietly(function, *args, **kwargs):
        """Call ``function`` without distribution validation, so that rows the model cannot encode come back
        as NaN for :meth:`_finite` to report, rather than as a traceback from deep inside Pyro."""

        with pyro.validation_enabled(False):
            return function(*args, **kwargs)

    def _finite(self, values, x, what):
        rows = ~np.isfinite(values.reshape(len(values), -1)).all(-1)
        if rows.any():
            first = int(np.flatnonzero(rows)[0])
            biggest = float(x[torch.as_tensor(rows, device=x.device)].abs().max())
            raise DataError(f"{int(rows.sum())} row(s) of X make the {what} non-finite (first: row {first}, values up "
                            f"to {biggest:g}); the model was trained on values in {self._trained_on()}: scale X as "
                            "the training data were")
        return values


def _fields(cls):

    return {f.name for f in dataclasses.fields(cls)}


def _folder(run_dir, what):
    if not isinstance(run_dir, (str, os.PathLike)) or str(run_dir) == "":
        raise ConfigError(f"{what} takes a folder path (str or pathlib.Path), got {run_dir!r}; pass e.g. "
                          f"{what}('runs/mine')")
    return Path(run_dir)


def _as_tensor(X, what, dtype=None):
    """A float tensor (a copy) of a validated array, refusing values that overflow the networks' dtype."""
    dtype = dtype or torch.get_default_dtype()
    x = torch.tensor(np.asarray(X), dtype=dtype)
    if not bool(torch.isfinite(x).all()):
        big = float(np.abs(np.asarray(X, dtype=np.float64)).max())
        raise DataError(f"{what} has values beyond the range of {str(dtype).replace('torch.', '')} (up to {big:g}); "
                        "rescale the data (e.g. sklearn.preprocessing.StandardScaler)")
    return x


def _numpy(t):
    return t.detach().cpu().numpy()
