"""The Concrete (Gumbel-softmax) relaxation of the cluster as a Pyro handler (Maddison et al. 2017, Jang et
al. 2017): the model's categorical cluster becomes ``s = log y``, ``y`` a point of the simplex.

>>> import pyro, pyro.distributions as dist, torch
>>> def model():
...     return pyro.sample("cluster", dist.Categorical(logits=torch.zeros(3)))
>>> s = relax_clusters(model, temperature=0.5)()
>>> s.shape, bool(torch.isclose(s.exp().sum(), torch.tensor(1.0)))
(torch.Size([3]), True)
"""

import functools

from pyro.distributions.torch_distribution import TorchDistributionMixin
from pyro.poutine.messenger import Messenger
from torch.distributions import relaxed_categorical

from ...errors import ConfigError
from ...sites import CLUSTER


class ExpRelaxedCategorical(relaxed_categorical.ExpRelaxedCategorical, TorchDistributionMixin):
    """torch's ``ExpRelaxedCategorical`` (the log of a Concrete sample) as a Pyro distribution."""


class RelaxedClusterMessenger(Messenger):
    """Swaps the model's categorical ``site`` for its Concrete counterpart ``ExpRelaxedCategorical(temperature,
    logits)`` with the same logits; the site is no longer enumerated.

    :param float temperature: the Concrete temperature (> 0).
    :param str site: the categorical site to relax.
    """

    def __init__(self, temperature=1.0, site=CLUSTER):
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or not temperature > 0:
            raise ConfigError(f"the relaxation's temperature must be a positive number, got {temperature!r}")
        if not isinstance(site, str) or not site:
            raise ConfigError(f"the site to relax must be a sample site's name, got {site!r}")
        super().__init__()
        self.temperature = float(temperature)
        self.site = site

    def _pyro_sample(self, msg):
        if msg["name"] == self.site:
            logits = msg["fn"].logits
            msg["fn"] = ExpRelaxedCategorical(logits.new_tensor(self.temperature), logits=logits)
            msg["infer"] = {k: v for k, v in msg["infer"].items() if k != "enumerate"}


def relax_clusters(fn=None, temperature=1.0, site=CLUSTER):
    """Relax the categorical ``site`` of ``fn`` at ``temperature`` (see :class:`RelaxedClusterMessenger`).

    Usable as a wrapper (``relax_clusters(model, temperature=0.5)``), a decorator
    (``@relax_clusters(temperature=0.5)``) or a context manager (``with relax_clusters(temperature=0.5):``).
    """
    msngr = RelaxedClusterMessenger(temperature, site)
    return msngr if fn is None else functools.update_wrapper(msngr(fn), fn, updated=())
