"""pyro-gmvae: deep generative clustering with Gaussian-mixture VAEs on Pyro.

Implements VaDE (Jiang et al. 2017, arXiv:1611.05148) and GMVAE (Dilokthanakul et al. 2016,
arXiv:1611.02648) as Pyro model functions whose cluster variables are enumerated and summed out
exactly by ``TraceEnum_ELBO``, with amortized guides, a free-bits effect handler, and exact
enumerated marginal-likelihood evaluation.
"""

from .config import ModelConfig, TrainConfig
from .models import MODELS, PRIORS, ClusterModel, Decoder, build, register_model, register_prior  # before inference/
from .data import Dataset, from_tensor, load_dataset
from .defaults import DATASET_DEFAULTS, PRESETS, defaults_for
from .errors import CheckpointError, ConfigError, DataError, DeviceError, GMVAEError, TrainingError
from .evaluation.marginal import estimate_marginal_likelihood, exact_log_marginal_likelihood, log_marginal_likelihood
from .evaluation.metrics import clustering_scores, hungarian_accuracy, many_to_one_accuracy
from .evaluation.responsibilities import cluster_marginals, predict, responsibilities
from .inference import GUIDES, AmortizedGuide, FreeBitsMessenger, free_bits, make_elbo
from .inference.amortized import register_guide
from .inference.training import Trainer
from .nn import register_network
from .plugins import import_plugins
from .evaluation.estimators import estimate_log_likelihood
from .selection import choose_num_clusters, sweep_num_clusters

__version__ = "0.1.0"

__all__ = [
    "ModelConfig", "TrainConfig", "Dataset", "from_tensor", "load_dataset", "GMVAEError", "ConfigError",
    "DataError", "CheckpointError", "DeviceError", "TrainingError", "clustering_scores", "hungarian_accuracy",
    "many_to_one_accuracy", "cluster_marginals", "predict", "responsibilities", "GUIDES", "AmortizedGuide",
    "FreeBitsMessenger", "free_bits", "make_elbo", "Trainer", "MODELS", "PRIORS", "ClusterModel", "Decoder",
    "build", "register_model", "register_prior", "log_marginal_likelihood", "exact_log_marginal_likelihood",
    "estimate_marginal_likelihood", "DATASET_DEFAULTS", "PRESETS", "defaults_for", "GMVAEClusterer",
    "register_guide", "register_network", "import_plugins", "estimate_log_likelihood", "sweep_num_clusters",
    "choose_num_clusters",
]

#: Names imported on first use (PEP 562): ``GMVAEClusterer`` subclasses scikit-learn's ``BaseEstimator``, whose
#: import costs more than a second, which ``import pyro_gmvae`` and every ``pyro-gmvae --help`` would pay.
_LAZY = {"GMVAEClusterer": ".estimator"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value  # once: later lookups find it without this function
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
