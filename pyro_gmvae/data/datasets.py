"""Data sets as flat ``(N, D)`` tensors, with labels and the natural likelihood: :class:`Dataset`, and the
checks every data set passes (:func:`validate_data`; :func:`from_tensor` for tensors of one's own). The
built-in data sets are read in :mod:`.loaders`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ..errors import DataError, check_choice
from ..registry import LIKELIHOODS

__all__ = ["IMAGE_SHAPES", "LIKELIHOODS", "Dataset", "check_num_features", "from_tensor", "validate_data"]


#: Flat sizes known to be images: (channels, height, width) (digits, MNIST, 32x32 gray, SVHN).
IMAGE_SHAPES = {64: (1, 8, 8), 784: (1, 28, 28), 1024: (1, 32, 32), 3072: (3, 32, 32)}


@dataclass(frozen=True)
class Dataset:
    """A data set: ``x`` (N, D) float, ``y`` (N,) int64 labels or None, and metadata."""

    name: str
    x: torch.Tensor
    y: torch.Tensor | None
    image_shape: tuple | None
    likelihood: str
    num_classes: int | None

    @property
    def data_dim(self) -> int:
        return int(self.x.shape[1])

    @property
    def num_datapoints(self) -> int:
        return int(self.x.shape[0])

    def __repr__(self):
        return (
            f"Dataset(name={self.name!r}, num_datapoints={self.num_datapoints}, data_dim={self.data_dim}, "
            f"image_shape={self.image_shape}, likelihood={self.likelihood!r}, num_classes={self.num_classes}, "
            f"device={self.x.device}, dtype={self.x.dtype})"
        )


# ----------------------------------------------------------------------------- validation


def _as_tensor(x, what="x"):
    if isinstance(x, torch.Tensor):
        return x
    if isinstance(x, np.ndarray):
        if x.dtype.kind in "biufc" and not x.dtype.isnative:  # a big-endian array: torch reads native only
            x = x.astype(x.dtype.newbyteorder("="))
        try:  # a 0-d array stays 0-d (np.ascontiguousarray would make it (1,)), so messages give its shape
            return torch.from_numpy(x if x.flags.c_contiguous else np.ascontiguousarray(x))
        except TypeError:
            fix = ("pass integer class labels 0..C-1, e.g. np.unique(y, return_inverse=True)[1]" if what == "y"
                   else "convert it to a float array")
            raise DataError(f"{what} has numpy dtype {x.dtype}, which is not numeric; {fix}") from None
    raise DataError(
        f"{what} must be a torch.Tensor or numpy array, got {type(x).__name__}; convert it with torch.as_tensor(...)"
    )


def validate_data(x, *, likelihood=None) -> None:
    """Check that ``x`` is usable as a data matrix; raise :class:`DataError` saying what to fix.

    ``x`` must be a 2-D (N, D) tensor or array (images flattened), non-empty, finite, and, for
    ``likelihood='bernoulli'`` or ``'continuous-bernoulli'``, within [0, 1].
    """
    if likelihood is not None:
        check_choice("likelihood", likelihood, LIKELIHOODS)
    t = _as_tensor(x)
    if t.is_complex() or t.dtype == torch.bool:
        fix = "x.real (or x.abs())" if t.is_complex() else "x.float()"
        raise DataError(f"x has dtype {t.dtype}; convert it to real floats, e.g. with {fix}")
    if t.numel() == 0:
        raise DataError(f"x is empty (shape {tuple(t.shape)}); pass at least one data point with at least one feature")
    if t.ndim != 2:
        fix = "x.reshape(-1, 1)" if t.ndim == 1 else "x.reshape(len(x), -1)"
        raise DataError(
            f"x must be 2-D (N, D) after flattening images, got shape {tuple(t.shape)}; reshape it with {fix}"
        )
    if t.is_floating_point():
        finite = torch.isfinite(t)
        bad = int((~finite).sum())
        if bad:
            raise DataError(f"x contains {bad} NaN/Inf values; remove or impute them")
        if t.dtype == torch.float64 and torch.get_default_dtype() == torch.float32:  # the model's dtype
            big = int((t.abs() > torch.finfo(torch.float32).max).sum())
            if big:
                top = torch.finfo(torch.float32).max
                raise DataError(f"x has {big} values out of float32 range (|x| > {top:.3g}), "
                                "which the float32 model turns into infinities; rescale the data")
    if likelihood in ("bernoulli", "continuous-bernoulli"):
        lo, hi = float(t.min()), float(t.max())
        if lo < 0 or hi > 1:
            raise DataError(
                f"x has values outside [0, 1] (min {lo:g}, max {hi:g}) but likelihood={likelihood!r}; "
                "rescale to [0, 1] or use likelihood='normal'"
            )


def _infer_likelihood(t: torch.Tensor) -> str:
    return "bernoulli" if float(t.min()) >= 0 and float(t.max()) <= 1 else "normal"


def _image_shape_of(shape) -> tuple | None:
    if len(shape) == 3:
        return (1, int(shape[1]), int(shape[2]))
    if len(shape) == 4:
        return tuple(int(s) for s in shape[1:])
    return None


def _check_labels(y, n, device):
    y = _as_tensor(y, "y")
    if y.ndim != 1 or y.shape[0] != n:
        raise DataError(
            f"y must have shape ({n},) to match x, got {tuple(y.shape)}; pass one integer label per data point"
        )
    if y.is_floating_point() and (not bool(torch.isfinite(y).all()) or not bool((y == y.round()).all())):
        raise DataError("y contains non-integer labels; pass integer class labels (e.g. 0..K-1)")
    return y.to(device=device, dtype=torch.int64)


def _num_classes(y):
    if y is None:
        return None
    if isinstance(y, np.ndarray):
        return int(np.unique(y).size)
    return int(torch.unique(y).numel())


# ----------------------------------------------------------------------------- user tensors


def from_tensor(x, y=None, *, name="tensor", likelihood=None, device=None) -> Dataset:
    """Wrap the user's own data (tensor or numpy array) in a validated :class:`Dataset`.

    Images of shape (N, H, W) or (N, C, H, W) are flattened (``image_shape`` records the shape).
    Integer data are converted to the default float dtype; float data keep their dtype.
    ``likelihood`` defaults to ``'bernoulli'`` when all values lie in [0, 1], else ``'normal'``.
    ``device`` defaults to the device of ``x``.
    """
    t = _as_tensor(x)
    device = t.device if device is None else torch.device(device)
    image_shape = _image_shape_of(t.shape) if t.ndim > 2 else None
    if t.ndim > 2:
        t = t.reshape(t.shape[0], -1)
    if likelihood is not None:
        check_choice("likelihood", likelihood, LIKELIHOODS)
    validate_data(t, likelihood=likelihood)
    dtype = t.dtype if t.is_floating_point() else torch.get_default_dtype()
    t = t.to(device=device, dtype=dtype)
    if likelihood is None:
        likelihood = _infer_likelihood(t)
    labels = None if y is None else _check_labels(y, t.shape[0], device)
    return Dataset(str(name), t, labels, image_shape, likelihood, _num_classes(labels))


def check_num_features(num_features, expected, fix):
    """Raise :class:`DataError` unless the data have the ``expected`` number of features (``fix``: what to do)."""
    if num_features != expected:
        raise DataError(f"the data has {num_features} features but the model expects {expected}; {fix}")
