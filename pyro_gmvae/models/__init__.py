"""Generative models: priors, decoders, and the model that joins them.

``build(config)`` returns ``(model, guide)`` for a :class:`~pyro_gmvae.config.ModelConfig`, handing each
component what it declares it needs (:mod:`.build`).
Models are registered by name in :data:`MODELS`: a model name picks a default prior and
whether training starts with VaDE's autoencoder pretraining.
"""

from ..errors import ConfigError
from . import hierarchical  # noqa: F401  (registers the "hierarchical" model and its prior)
from .build import PROVISIONS, GuideLink, build, build_prior
from .decoders import Decoder
from .model import ClusterModel
from .priors import (PRIORS, ConditionalMixturePrior, FullCovarianceMixturePrior, MixturePrior, StandardNormalPrior,
                     register_prior)
from .specs import MODELS, ModelSpec, register_model
from .vamp import VampPrior


__all__ = [
    "MODELS", "ModelSpec", "register_model", "build", "build_prior", "ClusterModel", "Decoder",
    "PRIORS", "register_prior", "StandardNormalPrior", "MixturePrior", "FullCovarianceMixturePrior",
    "ConditionalMixturePrior", "VampPrior", "GuideLink", "PROVISIONS", "ConfigError",
]

