"""Inference: amortized guides, the ELBO, the free-bits handler and the training loop.

Importing it registers the built-in guides, cluster inference strategies, initialisation strategies and
pretraining recipes in :mod:`pyro_gmvae.registry`."""

from .amortized import GUIDES, AmortizedGuide, DiagonalNormalHead, LowRankNormalHead, register_guide
from .cluster_inference import CLUSTER_INFERENCE, register_cluster_inference
from .elbo import make_elbo
from .flows import IAFHead
from .free_bits import FreeBitsMessenger, free_bits
from .pretrain import INIT_STRATEGIES, PRETRAIN_RECIPES, register_init

__all__ = ["GUIDES", "AmortizedGuide", "DiagonalNormalHead", "LowRankNormalHead", "IAFHead", "register_guide", "make_elbo",
           "FreeBitsMessenger", "free_bits", "CLUSTER_INFERENCE", "register_cluster_inference", "INIT_STRATEGIES",
           "PRETRAIN_RECIPES", "register_init"]
