"""The one minibatch loop (inference/minibatch.py) against a hand-written loop over the same permutation."""

import math

import pytest
import torch

from pyro_gmvae.errors import TrainingError
from pyro_gmvae.inference.minibatch import minibatch_epochs, permutation


def test_steps_follow_the_permutations_in_order_and_see_every_datapoint_once_per_epoch():
    n, batch, epochs = 7, 3, 2
    seen, starts = [], []
    g = torch.Generator().manual_seed(5)

    def step(idx, start):
        seen.append(idx.tolist())
        starts.append(start)
        return 1.0, idx.shape[0]

    ends = []
    steps = minibatch_epochs(step, n, epochs=epochs, batch_size=batch, fix="-", first_epoch=4,
                             order=lambda epoch: permutation(n, g, "cpu"), on_epoch_end=ends.append)
    g = torch.Generator().manual_seed(5)
    expected = [p[s:s + batch].tolist() for p in (torch.randperm(n, generator=g) for _ in range(epochs))
                for s in range(0, n, batch)]
    assert seen == expected and starts == [0, 3, 6] * epochs
    assert steps == math.ceil(n / batch) and ends == [4, 5]


def test_without_an_order_the_minibatches_are_slices():
    seen = []
    minibatch_epochs(lambda idx, start: (seen.append(idx) or 0.0, 1), 5, epochs=1, batch_size=5, fix="-")
    assert seen == [slice(0, 5)]


@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_a_non_finite_loss_names_the_epoch_the_step_and_the_fix(bad):
    losses = iter([1.0, 2.0, bad, 4.0])

    with pytest.raises(TrainingError, match=r"non-finite warm-up loss \((nan|inf)\) at epoch 2, step 1; lower it"):
        minibatch_epochs(lambda idx, start: (next(losses), 2), 4, epochs=3, batch_size=2, what="warm-up loss",
                         fix="lower it")
