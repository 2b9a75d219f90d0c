"""The network presets: shapes for flat and image data, and an SVI step through the conv nets."""

import math

import pytest
import torch
from pyro.infer import SVI
from pyro.optim import Adam

from pyro_gmvae import ConfigError, ModelConfig, build, make_elbo
from pyro_gmvae.nn import ConvDecoder, ConvEncoder, build_decoder_net, build_encoder_net


@pytest.mark.parametrize("data_dim", [784, 1024, 3072])
def test_conv_nets_map_images_both_ways(data_dim):
    enc, dec = ConvEncoder(data_dim), ConvDecoder(5, data_dim)
    assert enc(torch.rand(3, data_dim)).shape == (3, enc.out_dim)
    assert dec(torch.randn(2, 3, 5)).shape == (2, 3, data_dim)  # extra batch dims (particles) pass through


@pytest.mark.parametrize("network", ["vade", "small", "toy"])
def test_mlp_presets(network):
    encoder = build_encoder_net(network, 6)
    assert encoder(torch.rand(3, 6)).shape == (3, encoder.out_dim)
    assert build_decoder_net(network, 5, 6)(torch.randn(4, 3, 5)).shape == (4, 3, 6)


@pytest.mark.parametrize("model", ["vade", "gmvae"])
def test_conv_model_takes_an_svi_step(model):
    m, g = build(ModelConfig(model=model, data_dim=784, num_clusters=4, latent_dim=5, network="conv"))
    loss = SVI(m, g, Adam({"lr": 1e-3}), make_elbo(num_particles=2)).step(torch.rand(3, 784))
    assert math.isfinite(loss)


def test_conv_refuses_other_sizes():
    with pytest.raises(ConfigError, match="the conv network needs 28x28 or 32x32 images"):
        build_encoder_net("conv", 64)
