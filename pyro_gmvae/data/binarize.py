"""Binarized data: each pixel an independent Bernoulli draw with its gray level as probability, so that a
Bernoulli likelihood is a probability of the data and its log-likelihood compares with published numbers on
binarized MNIST.

- ``static``: one fixed draw from :data:`STATIC_SEED`, the same for every run and every command (training,
  ``evaluate``): the binary data set that log-likelihoods are reported on. The draw follows the rows' order,
  so the same data set, split and subset give the same binary images.
- ``dynamic``: training sees a fresh draw per epoch, seeded by ``(seed, epoch)`` (deterministic, and a resumed
  run draws what it would have drawn); pretraining, the initialisation and evaluation use the static draw.

>>> import torch
>>> x = torch.tensor([[0.0, 0.5, 1.0]])
>>> binarize_static(x)[0, [0, 2]].tolist()
[0.0, 1.0]
>>> bool((binarize_epoch(x, seed=0, epoch=3) == binarize_epoch(x, seed=0, epoch=3)).all())
True
"""

import numpy as np
import torch

from ..errors import DataError, check_choice

#: ``None`` (the data as they are), or one of these.
BINARIZE = ("static", "dynamic")
#: The seed of the static draw (fixed: every run's static binary images are the same).
STATIC_SEED = 20190819


def _draw(x, seed):
    # drawn on the CPU whatever the data's device, so that a run's binary images do not depend on it
    generator = torch.Generator().manual_seed(int(seed))
    return torch.bernoulli(x.detach().cpu(), generator=generator).to(x.device)


def check_binarizable(x, binarize):
    """Raise :class:`DataError` unless ``x`` can be binarized (values in [0, 1]); ``binarize`` None passes."""
    if binarize is None:
        return
    check_choice("binarize", binarize, BINARIZE)
    lo, hi = float(x.min()), float(x.max())
    if lo < 0 or hi > 1:
        raise DataError(f"--binarize {binarize} draws each value as a probability, but the data lie in "
                        f"[{lo:g}, {hi:g}], outside [0, 1]; rescale them to [0, 1] or drop --binarize")


def binarize_static(x):
    """The static binary draw of ``x`` (values in [0, 1]): ``Bernoulli(x)`` from :data:`STATIC_SEED`."""
    return _draw(x, STATIC_SEED)


def binarize_epoch(x, seed, epoch):
    """The dynamic draw of epoch ``epoch`` (from 0) of a run seeded ``seed``."""
    return _draw(x, np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0])
