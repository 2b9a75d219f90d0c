"""Checks of the data handed to the evaluation functions (responsibilities, marginal likelihood):
the library's own errors, naming the fix, instead of a shape or dtype error deep inside Pyro."""


import torch

from ..data.datasets import check_num_features, validate_data
from ..errors import ConfigError


def model_input(model, data):
    """``data`` (a tensor, a numpy array or a :class:`~pyro_gmvae.data.Dataset`) as a 2-D tensor in the
    dtype and on the device of ``model``'s parameters, or a :class:`~pyro_gmvae.errors.DataError`.

    The rows must be datapoints with the decoder's number of features, finite, and within [0, 1]
    for a Bernoulli likelihood (a value outside has no probability under the model).
    """
    x = data.x if hasattr(data, "x") and not isinstance(data, torch.Tensor) else data
    decoder = getattr(model, "decoder", None)
    validate_data(x, likelihood=getattr(decoder, "likelihood", None))
    x = torch.as_tensor(x)
    expected = getattr(decoder, "data_dim", None)
    if expected is not None:
        check_num_features(x.shape[1], expected, f"pass rows of {expected} values (one datapoint per row)")
    param = next(iter(model.parameters()), None) if hasattr(model, "parameters") else None  # a plain function
    if param is not None:
        x = x.to(device=param.device, dtype=param.dtype)
    elif not x.is_floating_point():
        x = x.to(torch.get_default_dtype())
    return x


def cluster_site(model, site=None):
    """``site`` (default: the model's finest cluster site), or a :class:`ConfigError` for a model
    without clusters or a name that is not one of its cluster sites."""
    sites = tuple(getattr(model, "cluster_sites", ()))
    if not sites:
        raise ConfigError("the model has no cluster sites (a VAE with a standard-normal prior), so it has no "
                          "responsibilities; build a model with a mixture prior (model='vade' or 'gmvae')")
    if site is None:
        return sites[-1]
    if site not in sites:
        raise ConfigError(f"unknown cluster site {site!r}; choose one of: {', '.join(sites)}")
    return site
