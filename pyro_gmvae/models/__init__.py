"""Generative models: priors, decoders, and the model that joins them.

``build(config)`` returns ``(model, guide)`` for a :class:`~pyro_gmvae.config.ModelConfig`.
Models are registered by name in :data:`MODELS`: a model name picks a default prior and
whether training starts with VaDE's autoencoder pretraining.
"""

from ..config import ModelConfig
from ..errors import ConfigError
from ..inference.cluster_inference import build_guide
from ..nn import build_decoder_net, build_encoder_net
from . import hierarchical  # noqa: F401  (registers the "hierarchical" model and its prior)
from .decoders import Decoder
from .model import ClusterModel
from .priors import (PRIORS, ConditionalMixturePrior, FullCovarianceMixturePrior, MixturePrior, StandardNormalPrior,
                     register_prior)
from .specs import MODELS, ModelSpec, register_model


def build_prior(config):
    prior_cls = PRIORS[config.prior_name]
    options = {"fixed_weights": True} if config.fixed_weights else {}  # ModelConfig checked the prior takes it
    return prior_cls(latent_dim=config.latent_dim, num_clusters=config.num_clusters,
                     noise_dim=config.noise_dim, hidden_dim=config.prior_hidden_dim,
                     num_super_clusters=config.num_super_clusters, **options)


def build(config):
    """``(model, guide)`` for a :class:`~pyro_gmvae.config.ModelConfig`, on the CPU in the default dtype."""
    if not isinstance(config, ModelConfig):
        raise ConfigError(f"build takes a ModelConfig, got {type(config).__name__} {config!r}; pass "
                          f"build(ModelConfig(model=..., data_dim=..., num_clusters=...))")
    prior = build_prior(config)
    decoder = Decoder(build_decoder_net(config.network, config.latent_dim, config.data_dim),
                      config.data_dim, config.likelihood)
    model = ClusterModel(prior, decoder)
    # exact: the plain amortized guide; the other cluster inference strategies add q(c | x)
    guide = build_guide(config, prior, build_encoder_net(config.network, config.data_dim))
    return model, guide


__all__ = [
    "MODELS", "ModelSpec", "register_model", "build", "build_prior", "ClusterModel", "Decoder",
    "PRIORS", "register_prior", "StandardNormalPrior", "MixturePrior", "FullCovarianceMixturePrior",
    "ConditionalMixturePrior", "ConfigError",
]

