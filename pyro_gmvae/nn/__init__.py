"""Neural networks used by encoders and decoders (plain ``torch.nn`` modules)."""

from .networks import NETWORK_PRESETS, ConvDecoder, ConvEncoder, MLP, build_decoder_net, build_encoder_net, \
    register_network, use_autocast

__all__ = [
    "MLP",
    "ConvEncoder",
    "ConvDecoder",
    "NETWORK_PRESETS",
    "build_encoder_net",
    "build_decoder_net",
    "use_autocast",
    "register_network",
]
