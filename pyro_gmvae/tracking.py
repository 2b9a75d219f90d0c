"""Experiment tracking: TensorBoard logs of a training run (``pyro-gmvae train --tensorboard DIR``,
``GMVAEClusterer(tensorboard=DIR)``), written by a :mod:`~pyro_gmvae.inference.callbacks` callback.

Per epoch, every numeric field of the ``metrics.jsonl`` row as the scalar ``train/FIELD`` (``train/elbo``,
``train/acc``, ``train/lr``...), at the step of its ``epoch``; the start's losses per epoch as ``pretrain/loss``
and ``warmup/loss``; at the end, the start's numbers (``start/init_acc``...) and the figures of
``pyro-gmvae plot`` (``curves``, ``latent``). Read them with ``tensorboard --logdir DIR``.

The ``tensorboard`` package is optional: ``pip install 'pyro-gmvae[tensorboard]'``. Other trackers (MLflow,
Weights & Biases...) are a callback of a few lines: see :mod:`pyro_gmvae.inference.callbacks`.
"""

import dataclasses
import math
import numbers
from pathlib import Path

from .errors import ConfigError
from .inference.callbacks import Callback
from .runs import check_writable

INSTALL = "pip install 'pyro-gmvae[tensorboard]'"


def _summary_writer(what):
    """TensorBoard's ``SummaryWriter`` class, or a one-line ConfigError naming the extra to install."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard needs it, and says so less plainly)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise ConfigError(f"{what} writes TensorBoard logs, which needs the tensorboard package; install "
                          f"pyro-gmvae[tensorboard] ({INSTALL})") from None
    return SummaryWriter


def _number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


class TensorBoardCallback(Callback):
    """Write the run's scalars and figures as TensorBoard event files into ``log_dir`` (see the module
    docstring). Checked on construction, before any training: the tensorboard package and a writable folder.
    ``figures=False`` leaves the figures out (they take a second or two at the end)."""

    def __init__(self, log_dir, *, figures=True, what="--tensorboard"):
        if not isinstance(log_dir, (str, Path)) or str(log_dir) == "":
            raise ConfigError(f"{what} takes a folder path, got {log_dir!r}")
        self.writer_class = _summary_writer(what)
        check_writable(log_dir, what)
        self.log_dir, self.figures = Path(log_dir), figures
        self.writer, self.data = None, None

    def _open(self):
        """The writer, opened at the first event (trainer.pretrain() alone has no on_train_begin)."""
        if self.writer is None:
            self.writer = self.writer_class(log_dir=str(self.log_dir))
        return self.writer

    def on_train_begin(self, trainer, data):
        self.data = data
        self._open()

    def on_pretrain_epoch_end(self, trainer, row):
        self._open().add_scalar(f"{row['phase']}/loss", row["loss"], row["epoch"])

    def on_epoch_end(self, trainer, row):
        writer = self._open()
        for key, value in row.items():
            if key != "epoch" and _number(value):
                writer.add_scalar(f"train/{key}", value, row["epoch"])
        writer.flush()  # an epoch can take minutes: TensorBoard shows it now

    def on_train_end(self, trainer, history):
        writer = self._open()
        for key, value in (trainer.pretrain_report or {}).items():
            if _number(value):
                writer.add_scalar(f"start/{key}", value, 0)
        if self.figures:
            self._add_figures(trainer, history)
        writer.close()
        self.writer = None

    def _add_figures(self, trainer, history):
        from .curves import curves_figure
        from .latent_view import latent_figure

        if history:
            self.writer.add_figure("curves", curves_figure(history, trainer.pretrain_report), trainer.epoch)
        if self.data is not None:
            param = next(iter(trainer.model.parameters()))
            data = dataclasses.replace(self.data, x=self.data.x.to(device=param.device, dtype=param.dtype),
                                       y=None if self.data.y is None else self.data.y.to(param.device))
            self.writer.add_figure("latent", latent_figure(trainer.model, trainer.guide, data), trainer.epoch)
