"""Callbacks: code of one's own at the events of training, as experiment trackers hook into it.

``Trainer(..., callbacks=[...])`` (and ``train_run(..., callbacks=...)``, ``GMVAEClusterer(callbacks=...)``) calls
each callback's methods in order; a callback is any object with some of them (a missing one is skipped), and
:class:`Callback` has them all, doing nothing, to subclass:

- ``on_train_begin(trainer, data)``: once, before the first work of this trainer (pretraining for a new run,
  the first epoch of a resumed one).
- ``on_pretrain_epoch_end(trainer, row)``: after each epoch of the start, ``row = {"phase": "pretrain" or
  "warmup", "epoch": n, "loss": loss per datapoint}`` (the warm-up's rows once its start is kept: with several
  UMAP starts, the chosen one's).
- ``on_epoch_end(trainer, row)``: after each training epoch, with the row that ``metrics.jsonl`` records
  (``epoch``, ``elbo``, ``lr``, the clustering scores...).
- ``on_train_end(trainer, history)``: after the last epoch of :meth:`~pyro_gmvae.inference.training.Trainer.fit`.

Under torchrun only the process of rank 0 calls them. ``--tensorboard DIR``
(:class:`pyro_gmvae.tracking.TensorBoardCallback`) is one; an MLflow run is a few lines::

    import mlflow
    from pyro_gmvae.inference.callbacks import Callback

    class MLflowCallback(Callback):
        def on_pretrain_epoch_end(self, trainer, row):
            mlflow.log_metric(f"{row['phase']}_loss", row["loss"], step=row["epoch"])

        def on_epoch_end(self, trainer, row):
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

    with mlflow.start_run():
        GMVAEClusterer(callbacks=[MLflowCallback()]).fit(x)
"""

import warnings

from ..errors import ConfigError

#: The events, in the order of a run.
EVENTS = ("on_train_begin", "on_pretrain_epoch_end", "on_epoch_end", "on_train_end")


class Callback:
    """A callback that does nothing: subclass it and define the events wanted (see the module docstring)."""

    def on_train_begin(self, trainer, data):
        pass

    def on_pretrain_epoch_end(self, trainer, row):
        pass

    def on_epoch_end(self, trainer, row):
        pass

    def on_train_end(self, trainer, history):
        pass


def check_callbacks(callbacks):
    """``callbacks`` as a list, refusing an entry with none of the events (a class passed for an instance,
    a function...)."""
    callbacks = list(callbacks or ())
    for callback in callbacks:
        if isinstance(callback, type) or not any(callable(getattr(callback, e, None)) for e in EVENTS):
            raise ConfigError(f"the callback {callback!r} has none of the methods {', '.join(EVENTS)}; pass "
                              "instances of a Callback subclass (e.g. callbacks=[MyCallback()])")
    return callbacks


def call(callbacks, event, *args):
    """Call ``event`` of every callback that has it, in order."""
    for callback in callbacks:
        method = getattr(callback, event, None)
        if method is not None:
            method(*args)


class CollapseWarning(Callback):
    """The warning that the mixture is collapsing (fewer than half of the clusters active or used), once per
    run: the first epoch it is seen says it, the later ones would repeat the same advice."""

    def __init__(self, threshold):
        self.threshold, self.warned = threshold, False

    def on_epoch_end(self, trainer, row):
        k = trainer.model.num_clusters
        active, used = row.get("num_active_clusters"), row.get("num_used_clusters")
        if self.warned or active is None or k < 2 or min(active, used) >= k / 2:
            return
        if not getattr(trainer.model.prior, "components_are_clusters", True):  # a VampPrior's pseudo-inputs
            return
        share = f"{self.threshold:.0%}"
        counts = {"active": (active, f"{{}} of {k} clusters are active (over {share} of the responsibility)"),
                  "used": (used, f"{{}} of {k} clusters are the most probable cluster of over {share} of the points")}
        low = [text.format(f"only {n}") for n, text in counts.values() if n < k / 2]
        fine = [text.format(n) for n, text in counts.values() if n >= k / 2]
        self.warned = True
        warnings.warn(f"epoch {row['epoch']}: {' and '.join(low)}" + (f", while {fine[0]}" if fine else "")
                      + "; the mixture is collapsing: try free bits (free_bits= / --free-bits), longer pretraining "
                      "(pretrain_epochs= / --pretrain-epochs) or a lower learning rate (lr= / --lr)",
                      RuntimeWarning, stacklevel=3)
