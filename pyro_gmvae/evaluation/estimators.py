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

from ..errors import ConfigError
from .ais import annealed_importance_sampling
from .marginal import estimate_marginal_likelihood
from .refined import refined_marginal_likelihood


#: ``is``'s settings, measured on MNIST (guide 05): 3 Newton steps, then 2 rounds of moment matching (25 draws
#: per latent dimension each, at least 200), up to 8 for the datapoints whose pilot still fails PSIS, a Student-t
#: (df 5) at 1.1x the matched scale.
IS_SETTINGS = {"fit": "laplace", "widen_grid": (1.1,), "num_newton_steps": 3, "num_adapt_rounds": 2,
               "max_adapt_rounds": 8}


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
    with that estimator's keyword ``options`` (e.g. ``num_samples``, ``num_steps``)."""
    check_estimator(estimator)
    return ESTIMATORS[estimator](model, guide, data, **options)
