"""The one minibatch loop: training, pretraining, the warm-up and the fit of ``q(c | x)`` all pass over the
data with :func:`minibatch_epochs` (the order, the step, the finiteness check and the progress bar)."""

import math
from contextlib import contextmanager

import torch
from tqdm.auto import tqdm

from ..errors import TrainingError


def permutation(n, generator, device):
    """A random order of ``n`` datapoints drawn from the CPU ``generator`` (the same on every device), moved
    to ``device``."""
    return torch.randperm(n, generator=generator).to(device)


def minibatch_epochs(step, n, *, epochs, batch_size, fix, what="loss", order=None, first_epoch=0, bar=None,
                     on_epoch_end=None):
    """``epochs`` passes over ``n`` datapoints in minibatches of ``batch_size``; returns the number of steps
    of the last pass.

    :param step: ``step(idx, start) -> (loss, size)`` for the minibatch ``idx`` starting at position ``start``
        of the pass; it accumulates whatever its caller reports. ``loss`` (a float, summed over the ``size``
        datapoints) is checked and shown.
    :param order: ``order(epoch) -> permutation`` of ``range(n)``; ``None``: the datapoints as they are
        (``idx`` a slice).
    :param str fix: what to do about a non-finite loss, the end of the :class:`TrainingError` it raises.
    :param bar: a tqdm bar advanced by one per step (see :func:`progress_bar`), or None.
    :param on_epoch_end: ``on_epoch_end(epoch)`` after each pass (``epoch`` counted from ``first_epoch``).
    """
    steps = 0
    for epoch in range(first_epoch, first_epoch + epochs):
        perm = None if order is None else order(epoch)
        for steps, start in enumerate(range(0, n, batch_size), 1):
            idx = slice(start, start + batch_size) if perm is None else perm[start:start + batch_size]
            loss, size = step(idx, start)
            if bar is not None:  # per step: an MNIST epoch takes minutes on a CPU
                bar.update(1)
                bar.set_postfix(epoch=epoch + 1, loss=f"{loss / size:.4g}", refresh=False)
            if not math.isfinite(loss):
                raise TrainingError(f"non-finite {what} ({loss}) at epoch {epoch + 1}, step {steps}; {fix}")
        if on_epoch_end is not None:
            on_epoch_end(epoch)
    return steps


@contextmanager
def progress_bar(total_steps, initial_steps, desc, enabled):
    """A tqdm bar of ``total_steps`` steps (closed on exit), or None when not ``enabled``."""
    if not enabled:
        yield None
        return
    bar = tqdm(total=total_steps, initial=initial_steps, desc=desc, unit="step")
    try:
        yield bar
    finally:
        bar.close()
