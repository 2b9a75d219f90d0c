"""The marginal-likelihood estimators by name, for the CLI (``pyro-gmvae evaluate RUN --estimator NAME``).

- ``is``: importance sampling with a proposal fitted to each datapoint (a Laplace approximation at the
  posterior mode, adapted to the posterior's mean and covariance by moment matching, as a Student-t),
  :func:`~pyro_gmvae.evaluation.refined.refined_marginal_likelihood` with :data:`IS_SETTINGS`;
- ``is-guide``: importance sampling with the amortized guide itself,
  :func:`~pyro_gmvae.evaluation.marginal.estimate_marginal_likelihood`;
- ``ais``: annealed importance sampling from the guide to the posterior,
  :func:`~pyro_gmvae.evaluation.ais.annealed_importance_sampling`.

Every result has ``.log_likelihood`` ``(N,)`` and ``.summary()`` (a JSON-ready dict).
:func:`~pyro_gmvae.evaluation.ais.bdmc` gives both bounds on simulated data.

>>> import torch
>>> from pyro_gmvae import ModelConfig, build
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> estimate_log_likelihood(model, guide, torch.rand(4, 6), "ais", num_steps=3, num_chains=2).num_chains
2
"""

import inspect

from ..errors import ConfigError, check_positive
from ..memory import check_memory
from .ais import annealed_importance_sampling
from .marginal import estimate_marginal_likelihood
from .refined import refined_marginal_likelihood


#: ``is``'s settings, measured on MNIST (guide 05): 3 Newton steps, then 2 rounds of moment matching (25 draws
#: per latent dimension each, at least 200), up to 8 for the datapoints whose pilot still fails PSIS, a Student-t
#: (df 5) at 1.1x the matched scale.
#: The proposal is the defensive mixture 0.8 x that Student-t + 0.2 x the guide (issue 31): a weight is then at
#: most 5x the guide's own, so a poor fit cannot make ``is`` much worse than ``is-guide``; on a latent-40 VAE
#: (binarized MNIST, 10 epochs, 100 test images, 1000 samples; benchmarks/is_defensive.py) it moved the share of
#: images with k-hat > 0.7 from 1.00 (the Student-t alone) to 0.84, against 0.94 for is-guide.
IS_SETTINGS = {"fit": "laplace", "widen_grid": (1.1,), "num_newton_steps": 3, "num_adapt_rounds": 2,
               "max_adapt_rounds": 8, "proposal": "defensive-t", "alpha": 0.2}


def _refined(model, guide, data, **options):
    return refined_marginal_likelihood(model, guide, data, **{**IS_SETTINGS, **options})


#: name -> function(model, guide, data, **options)
ESTIMATORS = {"is": _refined, "is-guide": estimate_marginal_likelihood, "ais": annealed_importance_sampling}
#: What each estimator's cost is counted in: its keywords for the number of draws (``pyro-gmvae evaluate``'s
#: ``--num-samples``, ``--num-steps``, ``--num-chains``).
COUNTS = {"is": ("num_samples",), "is-guide": ("num_samples",), "ais": ("num_steps", "num_chains")}
_DEFAULTS_OF = {"is": refined_marginal_likelihood, "is-guide": estimate_marginal_likelihood,
                "ais": annealed_importance_sampling}


def default_count(estimator, name):
    """The default of the count ``name`` (e.g. ``num_samples``) of ``estimator``: its function's own.

    >>> default_count("is", "num_samples"), default_count("ais", "num_steps")
    (500, 500)
    """
    check_estimator(estimator)
    return inspect.signature(_DEFAULTS_OF[estimator]).parameters[name].default


def check_estimator(estimator):
    if estimator not in ESTIMATORS:
        raise ConfigError(f"unknown estimator {estimator!r}; choose one of: {', '.join(ESTIMATORS)}")


def estimate_log_likelihood(model, guide, data, estimator="is", **options):
    """``log p(x_n)`` of every row of ``data`` by the estimator named ``estimator`` (see the module docstring),
    with that estimator's keyword ``options`` (e.g. ``num_samples``, ``num_steps``). An option the estimator
    does not take, or draws whose log-weights would not fit in memory, are refused before the work."""
    check_estimator(estimator)
    takes = inspect.signature(_DEFAULTS_OF[estimator]).parameters
    unknown = sorted(set(options) - set(takes) - {"model", "guide", "data"})
    if unknown:
        allowed = [name for name, p in takes.items() if p.default is not inspect.Parameter.empty]
        raise ConfigError(f"estimator {estimator!r} takes no option {', '.join(map(repr, unknown))}; its options "
                          f"are {', '.join(allowed)}")
    if "num_samples" in COUNTS[estimator]:
        num_samples = options.get("num_samples", takes["num_samples"].default)
        check_positive("num_samples", num_samples, integer=True)
        rows = data.shape[0] if hasattr(data, "shape") and len(data.shape) else 1
        check_block_memory(num_samples, min(options.get("batch_size", takes["batch_size"].default), rows),
                           _device(model))
    return ESTIMATORS[estimator](model, guide, data, **options)


def check_block_memory(num_samples, batch, device):
    """Refuse a (num_samples x batch) block of log-weights (kept whole for PSIS) larger than the memory."""
    check_memory(num_samples * batch * 12, device,  # float32 log-weights and their float64 copy for PSIS
                 f"--num-samples {num_samples} with batches of {batch} datapoints (num_samples, batch_size) "
                 "of log-weights per batch", "lower --batch-size or --num-samples", share=0.5)


def _device(model):
    parameter = next(iter(model.parameters()), None)
    return "cpu" if parameter is None else parameter.device
