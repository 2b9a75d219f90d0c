"""Decoders: the likelihood ``p(x | z)`` of an observation given the latent."""

import pyro
import pyro.distributions as dist
import torch
from pyro.nn import PyroModule
from torch import nn

from ..errors import check_choice
from ..registry import LIKELIHOODS
from ..sites import OBS
from .priors import inverse_softplus, positive

LIKELIHOODS.builtin("bernoulli", "Bernoulli(logits=net(z)): binary or gray levels in [0, 1]")
LIKELIHOODS.builtin("normal", "Normal(net(z), scale): a learned scale per feature")


class Decoder(PyroModule):
    """``x | z ~ Bernoulli(logits=net(z))`` or ``Normal(net(z), scale)`` with a learned scale per feature.

    The Bernoulli likelihood accepts gray levels in [0, 1] (binary cross-entropy, as both papers do),
    so its support is not validated.
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
        return dist.Normal(out, positive(self.scale_raw)).to_event(1)

    def forward(self, z, x=None):
        return pyro.sample(OBS, self.x_dist(z), obs=x)
