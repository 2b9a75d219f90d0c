"""Models by name: a model name picks a default prior and whether training starts with VaDE's
autoencoder pretraining (:data:`pyro_gmvae.registry.MODELS`)."""

from dataclasses import dataclass

from ..errors import ConfigError
from ..registry import MODELS


@dataclass(frozen=True)
class ModelSpec:
    prior: str
    pretrain_epochs: int = 0
    description: str = ""


def register_model(name, spec, *, override=False):
    """Add a :class:`ModelSpec` (its default prior, its pretraining) to :data:`MODELS` under ``name``."""
    if not isinstance(spec, ModelSpec):
        raise ConfigError(f"register_model takes a ModelSpec, got {type(spec).__name__}; "
                          "pass ModelSpec(prior='my-prior', pretrain_epochs=0)")
    return MODELS.register(name, spec, override=override)


MODELS.builtin("vade", ModelSpec("mixture", pretrain_epochs=50, description="VaDE (Jiang et al. 2017)"))
# pretraining + the mixture start is what keeps GMVAE out of its collapsed start (BENCHMARKS.md)
MODELS.builtin("gmvae", ModelSpec("conditional-mixture", pretrain_epochs=50,
                                  description="GMVAE (Dilokthanakul et al. 2016)"))
MODELS.builtin("vae", ModelSpec("standard-normal", description="VAE baseline, N(0, I) prior"))
