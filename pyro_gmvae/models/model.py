r"""The generative model: a prior over latents and clusters, and a decoder.

.. code-block:: none

    for each datapoint n (plate "data"):
        latents_n ~ prior                 (clusters enumerated, continuous latents sampled)
        x_n | z_n ~ decoder(z_n)

The prior and the decoder are separate components, so ``ClusterModel(MixturePrior(...), decoder)``
is VaDE, ``ClusterModel(ConditionalMixturePrior(...), decoder)`` is GMVAE and
``ClusterModel(StandardNormalPrior(...), decoder)`` is the VAE baseline.

With the clusters ``c`` enumerated and the continuous latents ``h`` (``z``, and ``w`` for GMVAE)
drawn from the guide, :class:`~pyro.infer.TraceEnum_ELBO` optimises

.. math::

    \mathcal{L}(x) = \mathbb{E}_{q(h \mid x)}\Big[\log p(x \mid z)
        + \log \sum_{c} p(c)\, p(h \mid c) - \log q(h \mid x)\Big],

the sum over clusters exact (see guides/02-models-and-objectives.md).

>>> import torch
>>> from pyro_gmvae import ModelConfig, build, make_elbo
>>> model, guide = build(ModelConfig(model="gmvae", data_dim=6, num_clusters=4, latent_dim=3, network="toy"))
>>> loss = make_elbo().differentiable_loss(model, guide, torch.rand(5, 6))
>>> bool(torch.isfinite(loss))
True
"""

import pyro
from pyro.nn import PyroModule

from ..sites import DATA_PLATE


class ClusterModel(PyroModule):
    """A Pyro model ``model(x)`` built from a ``prior`` and a ``decoder``.

    Sites: those of the prior (``cluster``, ``z``, and ``w`` for GMVAE) and ``x``; plate ``data``.
    """

    def __init__(self, prior, decoder):
        super().__init__()
        self.prior = prior
        self.decoder = decoder

    @property
    def cluster_sites(self):
        return tuple(self.prior.cluster_sites)

    @property
    def num_clusters(self):
        return self.prior.num_clusters

    def forward(self, x):
        with pyro.plate(DATA_PLATE, x.shape[0]):
            z = self.prior()
            return self.decoder(z, x)
