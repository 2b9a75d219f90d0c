"""Inference: amortized guides, the ELBO, the free-bits handler and the training loop."""

from .amortized import GUIDES, AmortizedGuide, DiagonalNormalHead, LowRankNormalHead, register_guide
from .elbo import make_elbo
from .free_bits import FreeBitsMessenger, free_bits

__all__ = ["GUIDES", "AmortizedGuide", "DiagonalNormalHead", "LowRankNormalHead", "register_guide", "make_elbo",
           "FreeBitsMessenger", "free_bits"]
