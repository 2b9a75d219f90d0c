"""Encoder and decoder networks.

Presets follow the papers: VaDE's ``D-500-500-2000-latent`` MLP and its mirror, a small MLP for
2-D toy data (GMVAE's synthetic experiment uses 100 hidden units), and a convolutional pair for
28x28 (MNIST-like, 1 channel) and 32x32 (SVHN-like, 3 channels) images. Every network maps
flat vectors: images travel as ``(batch, channels * height * width)`` and the conv nets reshape.
"""

import math

import torch
from torch import nn

from ..data.datasets import IMAGE_SHAPES
from ..errors import ConfigError, check_choice
from ..registry import NETWORKS

#: Hidden sizes of the MLP presets, encoder order (the decoder mirrors them); ``None``: the conv pair.
NETWORK_PRESETS = NETWORKS
NETWORKS.builtin("vade", (500, 500, 2000))
NETWORKS.builtin("small", (256, 128))
NETWORKS.builtin("toy", (100,))
# the likelihood literature's MLP (VampPrior, pythae's reproductions): 300-300 in the encoder and the decoder
NETWORKS.builtin("mlp300", (300, 300))
NETWORKS.builtin("conv", None)

#: The image sizes the convolutional pair takes (28x28 and 32x32; the 8x8 digits are too small for it).
_IMAGE_SHAPES = {d: IMAGE_SHAPES[d] for d in (784, 3072, 1024)}


class MLP(nn.Sequential):
    """Linear layers with ReLU between them (none after the last)."""

    def __init__(self, in_dim, hidden_dims, out_dim=None, activation=nn.ReLU):
        dims = [in_dim, *hidden_dims] + ([out_dim] if out_dim is not None else [])
        layers = []
        for i, (a, b) in enumerate(zip(dims[:-1], dims[1:])):
            layers.append(nn.Linear(a, b))
            if i < len(dims) - 2 or out_dim is None:
                layers.append(activation())
        super().__init__(*layers)
        self.out_dim = dims[-1]


def _image_shape(data_dim):
    if data_dim not in _IMAGE_SHAPES:
        raise ConfigError(
            f"the conv network needs 28x28 or 32x32 images (data_dim 784, 1024 or 3072), got "
            f"data_dim={data_dim}; use --network vade, small or toy for other data"
        )
    return _IMAGE_SHAPES[data_dim]


class ConvEncoder(nn.Module):
    """Three stride-2 convolutions then a linear layer: ``(B, C*H*W) -> (B, out_dim)``."""

    def __init__(self, data_dim, out_dim=512):
        super().__init__()
        self.shape = _image_shape(data_dim)
        c, h, _ = self.shape
        self.conv = nn.Sequential(
            nn.Conv2d(c, 32, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
            nn.Conv2d(64, 128, 3, 2, 1), nn.ReLU(),
        )
        side = math.ceil(math.ceil(h / 2) / 2 / 2)
        self.fc = nn.Sequential(nn.Linear(128 * side * side, out_dim), nn.ReLU())
        self.out_dim = out_dim

    def forward(self, x):
        batch = x.shape[:-1]
        y = self.conv(x.reshape(-1, *self.shape))
        return self.fc(y.flatten(1)).reshape(*batch, self.out_dim)


class ConvDecoder(nn.Module):
    """Mirror of :class:`ConvEncoder`: ``(..., in_dim) -> (..., C*H*W)`` logits or means."""

    def __init__(self, in_dim, data_dim, hidden_dim=512):
        super().__init__()
        self.shape = _image_shape(data_dim)
        c, h, _ = self.shape
        self.side = 4  # 28 -> 14 -> 7 -> 4 and 32 -> 16 -> 8 -> 4 in the encoder
        self.fc = nn.Sequential(
            nn.Linear(in_dim, hidden_dim), nn.ReLU(),
            nn.Linear(hidden_dim, 128 * self.side * self.side), nn.ReLU(),
        )
        out_pad = 0 if h == 28 else 1  # 4 -> 7 for 28x28, 4 -> 8 for 32x32
        self.deconv = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 3, 2, 1, output_padding=out_pad), nn.ReLU(),
            nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
            nn.ConvTranspose2d(32, c, 4, 2, 1),
        )
        self.out_dim = data_dim

    def forward(self, z):
        batch = z.shape[:-1]
        y = self.fc(z.reshape(-1, z.shape[-1])).reshape(-1, 128, self.side, self.side)
        return self.deconv(y).reshape(*batch, self.out_dim)


def register_network(name, hidden_dims, *, override=False):
    """Add an MLP preset to :data:`NETWORK_PRESETS`: ``hidden_dims`` in encoder order (the decoder mirrors
    them), chosen by name with ``--network`` or ``ModelConfig(network=...)``.

    >>> register_network("doc-tiny", (16,))
    (16,)
    >>> NETWORK_PRESETS.pop("doc-tiny")
    (16,)
    """
    if not isinstance(name, str) or not name:
        raise ConfigError("a network preset needs a non-empty string name")
    dims = tuple(hidden_dims)
    if not dims or not all(isinstance(d, int) and d > 0 for d in dims):
        raise ConfigError(f"network {name!r}: hidden_dims must be positive integers, got {hidden_dims!r}")
    return NETWORKS.register(name, dims, override=override)


def build_encoder_net(network, data_dim):
    """The encoder trunk of a preset: maps ``(B, data_dim)`` to ``(B, trunk.out_dim)``."""
    check_choice("network", network, NETWORK_PRESETS)
    if network == "conv":
        return ConvEncoder(data_dim)
    return MLP(data_dim, NETWORK_PRESETS[network])


def build_decoder_net(network, latent_dim, data_dim):
    """The decoder of a preset: maps ``(..., latent_dim)`` to ``(..., data_dim)`` parameters."""
    check_choice("network", network, NETWORK_PRESETS)
    if network == "conv":
        return ConvDecoder(latent_dim, data_dim)
    return MLP(latent_dim, tuple(reversed(NETWORK_PRESETS[network])), data_dim)


def use_autocast(module, dtype=torch.bfloat16):
    """Run ``module`` under ``torch.autocast`` in ``dtype`` and return its output in the input's dtype.

    For the encoder trunk and the decoder net only: the ELBO itself (log-densities, the enumerated sum)
    stays in full precision, since Pyro's contraction needs one dtype. Patches this instance's
    ``forward``, so parameters and checkpoints are unchanged.
    """
    inner = module.forward

    def forward(x):
        with torch.autocast(x.device.type, dtype=dtype):
            out = inner(x)
        return out.to(x.dtype)

    module.forward = forward
    return module
