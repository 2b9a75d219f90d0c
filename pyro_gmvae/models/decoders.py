"""Decoders: the likelihood ``p(x | z)`` of an observation given the latent.

- ``bernoulli``: ``Bernoulli(logits=net(z))``, a probability of binary data. On gray levels in [0, 1]
  it is the binary cross-entropy both papers fit, which is *not* a density of a gray-level image: its
  "log-likelihood" cannot be compared with a density's, nor with published numbers on binarized data
  (``--binarize`` makes the data binary; :func:`is_normalised` tells).
- ``continuous-bernoulli``: ``ContinuousBernoulli(logits=net(z))`` (Loaiza-Ganem and Cunningham 2019),
  the Bernoulli with its normalising constant: a proper density on [0, 1] for gray levels.
- ``normal``: ``Normal(net(z), scale)`` with a learned scale per feature.
"""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..errors import check_choice
from ..registry import LIKELIHOODS
from ..sites import OBS
from .priors import inverse_softplus, positive

LIKELIHOODS.builtin("bernoulli", "Bernoulli(logits=net(z)): binary data (gray levels in [0, 1]: not a density)")
LIKELIHOODS.builtin("continuous-bernoulli", "ContinuousBernoulli(logits=net(z)): a density of gray levels in [0, 1]")
LIKELIHOODS.builtin("normal", "Normal(net(z), scale): a learned scale per feature")

#: The likelihoods whose data must lie in [0, 1].
UNIT_INTERVAL = ("bernoulli", "continuous-bernoulli")


def is_normalised(likelihood, x):
    """Whether ``likelihood`` is a normalised probability (mass or density) of the data ``x``: False only for
    the Bernoulli on data with values strictly between 0 and 1 (gray levels)."""
    if likelihood != "bernoulli":
        return True
    return not bool(((x > 0) & (x < 1)).any())


class Decoder(PyroModule):
    """``x | z ~ Bernoulli(logits=net(z))``, ``ContinuousBernoulli(logits=net(z))`` or ``Normal(net(z), scale)``
    with a learned scale per feature (see the module docstring).

    The Bernoulli likelihood accepts gray levels in [0, 1] (binary cross-entropy, as both papers do),
    so its support is not validated.

    >>> import torch
    >>> decoder = Decoder(torch.nn.Linear(2, 3), 3, "continuous-bernoulli")
    >>> decoder.x_dist(torch.zeros(4, 2)).event_shape
    torch.Size([3])
    """

    def __init__(self, net, data_dim, likelihood="bernoulli"):
        super().__init__()
        check_choice("likelihood", likelihood, LIKELIHOODS)
        self.net = net
        self.data_dim = data_dim
        self.likelihood = likelihood
        if likelihood == "normal":
            self.scale_raw = nn.Parameter(inverse_softplus(torch.full((data_dim,), 0.1)))

    def x_dist(self, z):
        out = self.net(z)
        if self.likelihood == "bernoulli":
            return dist.Bernoulli(logits=out, validate_args=False).to_event(1)
        if self.likelihood == "continuous-bernoulli":
            return dist.ContinuousBernoulli(logits=out).to_event(1)
        return dist.Normal(out, positive(self.scale_raw)).to_event(1)

    def forward(self, z, x=None):
        return pyro.sample(OBS, self.x_dist(z), obs=x)
