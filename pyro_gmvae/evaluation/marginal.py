"""The marginal likelihood ``log p(x)``: importance sampling with every cluster summed out exactly.

For each datapoint the estimate is

.. math::

    \\log \\hat p_S(x) = \\log \\frac{1}{S} \\sum_{s=1}^{S}
        \\frac{\\sum_{c} p(x, c, z_s)}{q(z_s \\mid x)}, \\qquad z_s \\sim q(z \\mid x),

where ``c`` runs over *every* joint value of the model's enumerated sites (``cluster``, and
``super_cluster`` in a hierarchy) and ``z`` collects the continuous latents the guide samples
(``z``, and GMVAE's ``w``). The inner sum is done by Pyro's parallel enumeration and a brute-force
``logsumexp`` over all enumeration dims of the summed log-factors, so it stays exact however the
enumerated sites nest. The estimate is a stochastic lower bound of ``log p(x)`` that rises to it
as ``S`` grows (Burda et al. 2016); its per-sample average is the ELBO of ``TraceEnum_ELBO``.

:func:`exact_log_marginal_likelihood` gives ``log p(x)`` in closed form for a Gaussian mixture
prior with a linear-Gaussian decoder, the reference the estimator is tested against:

.. math::

    p(x) = \\sum_k \\pi_k\\, \\mathcal{N}\\big(x;\\ W \\mu_k + b,\\
        W \\Sigma_k W^\\top + \\mathrm{diag}\\,\\sigma^2\\big).

>>> import torch
>>> from pyro_gmvae import ModelConfig, build
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> ll = log_marginal_likelihood(model, guide, torch.rand(4, 6), num_samples=8)
>>> ll.shape
torch.Size([4])
"""

import math
import warnings
from dataclasses import dataclass

import numpy as np
import pyro
import torch
from pyro import poutine
from pyro.poutine.util import site_is_subsample
from torch import nn

from ..errors import ConfigError, check_positive
from ..sites import DATA_PLATE
from .inputs import model_input

#: The plate of importance samples; the models' own data plate is dim -1.
SAMPLE_PLATE = "_importance_samples"
#: Elements of one (samples x datapoints) grid per chunk; enumeration multiplies it by the table size.
CHUNK_ELEMENTS = 2 ** 17
#: Clusters up to which a chunk holds CHUNK_ELEMENTS; with more (a VampPrior's 500 pseudo-inputs), its samples
#: shrink in proportion, so that the enumerated table stays that of 10 clusters (GiB per chunk, else).
CHUNK_CLUSTERS = 10
#: Pareto k-hat above this marks an unreliable importance-sampling estimate (Vehtari et al. 2024).
KHAT_THRESHOLD = 0.7


def check_site(site, n, what):
    """Every site lives in the data plate, and its log-prob is per (sample, datapoint)."""
    if not any(f.name == DATA_PLATE for f in site["cond_indep_stack"]):
        raise ConfigError(f"{what} site {site['name']!r} is outside plate {DATA_PLATE!r}, so its log-density "
                          "cannot be split per datapoint; put every latent and observed site inside the data plate")
    lp = site["log_prob"]
    if lp.dim() >= 1 and lp.shape[-1] not in (1, n):
        raise ConfigError(f"{what} site {site['name']!r} has log-prob shape {tuple(lp.shape)}, expected a last "
                          f"dim of {n} datapoints; declare its dims inside plate {DATA_PLATE!r} (e.g. to_event)")


def sample_sites(trace):
    """The sample sites of a trace, without the subsample sites of its plates."""
    return [s for s in trace.nodes.values() if s["type"] == "sample" and not site_is_subsample(s)]


def enumerated_log_weights(model, guide, x, num_samples):
    """``(num_samples, N)`` log importance weights ``log sum_c p(x, c, z_s) - log q(z_s | x)``, the
    ``num_samples`` draws of the guide vectorized; differentiable (the importance-weighted objective's)."""
    n = x.shape[0]
    with pyro.plate(SAMPLE_PLATE, num_samples, dim=-2):
        guide_trace = poutine.trace(guide).get_trace(x)
        model_trace = poutine.trace(
            poutine.replay(poutine.enum(model, first_available_dim=-3), trace=guide_trace)).get_trace(x)
    guide_trace.compute_log_prob()
    model_trace.compute_log_prob()

    log_q = x.new_zeros(num_samples, n)
    for site in sample_sites(guide_trace):
        if site["infer"].get("enumerate"):
            raise ConfigError(f"guide site {site['name']!r} is enumerated; the estimator sums discrete sites out "
                              "in the model, so leave them out of the guide")
        check_site(site, n, "guide")
        log_q = log_q + site["log_prob"]

    # The brute-force joint table: every model factor broadcast together, then summed over all
    # enumeration dims (left of the sample dim). Exact for any nesting of enumerated sites.
    log_joint = summed_log_joint(model_trace, num_samples, n, supplied=guide_trace.nodes)
    if log_joint.shape != (num_samples, n) or log_q.shape != (num_samples, n):
        raise ConfigError(f"log-weights have shape {tuple(log_joint.shape)} / {tuple(log_q.shape)}, expected "
                          f"{(num_samples, n)}; the model and guide must use one plate {DATA_PLATE!r} "
                          "(max_plate_nesting=1)")
    return log_joint - log_q


_log_weights_chunk = enumerated_log_weights


def summed_log_joint(model_trace, num_samples, n, supplied=()):
    """``log p(x, latents)`` ``(num_samples, n)`` from a model trace run under ``poutine.enum``: every factor
    broadcast together, then the enumerated dims (left of the sample dim) summed out. Exact for any nesting
    of enumerated sites. A latent site must be enumerated or in ``supplied`` (the names given a value)."""
    factors = []
    for site in sample_sites(model_trace):
        if not site["is_observed"] and site["name"] not in supplied and "_enumerate_dim" not in site["infer"]:
            raise ConfigError(f"model site {site['name']!r} is neither enumerated nor supplied by the guide; "
                              "mark discrete sites infer={'enumerate': 'parallel'} and give the guide every "
                              "continuous latent")
        check_site(site, n, "model")
        factors.append(site["log_prob"])
    total = sum(factors, factors[0].new_zeros(num_samples, n))
    if total.dim() > 2:
        total = total.reshape((-1, num_samples, n)).logsumexp(0)
    return total


def chunk_samples(model, batch, chunk_size=None):
    """Samples per chunk for ``batch`` datapoints of ``model`` (``chunk_size``, if given): see CHUNK_CLUSTERS."""
    clusters = max(1.0, getattr(model, "num_clusters", 1) / CHUNK_CLUSTERS)
    return chunk_size or max(1, int(CHUNK_ELEMENTS / (max(batch, 1) * clusters)))


def _chunks(num_samples, batch, chunk_size, model=None):
    size = chunk_samples(model, batch, chunk_size)
    for start in range(0, num_samples, size):
        yield min(size, num_samples - start)


def _check_counts(num_samples, batch_size):
    for name, value in (("num_samples", num_samples), ("batch_size", batch_size)):
        check_positive(name, value, integer=True)


@torch.no_grad()
def importance_log_weights(model, guide, x, num_samples, *, chunk_size=None):
    """``(num_samples, N)`` log importance weights of the rows of ``x`` (clusters summed out exactly).

    The ``num_samples`` guide draws are vectorized in chunks of ``chunk_size`` samples.
    """
    _check_counts(num_samples, 1)
    x = model_input(model, x)
    return torch.cat([_log_weights_chunk(model, guide, x, s) for s in _chunks(num_samples, x.shape[0], chunk_size,
                                                                                          model)])


@torch.no_grad()
def log_marginal_likelihood(model, guide, data, num_samples=100, batch_size=500, *, chunk_size=None):
    """``(N,)`` importance-weighted estimates of ``log p(x_n)`` with ``num_samples`` guide samples.

    ``data`` is a tensor ``(N, D)`` or a :class:`~pyro_gmvae.data.Dataset`. Datapoints go in
    batches of ``batch_size``; samples in vectorized chunks whose running ``logsumexp`` bounds the
    memory for any ``num_samples``. Everything runs on the data's device.
    """
    x = model_input(model, data)
    _check_counts(num_samples, batch_size)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        total = None
        for s in _chunks(num_samples, xb.shape[0], chunk_size, model):
            part = _log_weights_chunk(model, guide, xb, s).logsumexp(0)
            total = part if total is None else torch.logaddexp(total, part)
        out.append(total - math.log(num_samples))
    return torch.cat(out)


@torch.no_grad()
def elbo_per_datapoint(model, guide, data, num_samples=1, batch_size=500, *, chunk_size=None):
    """``(N,)`` ELBO of each datapoint, the mean log-weight over ``num_samples`` guide samples
    (what ``TraceEnum_ELBO`` computes, per datapoint and with the sign of a bound, not a loss)."""
    x = model_input(model, data)
    _check_counts(num_samples, batch_size)
    out = []
    for start in range(0, x.shape[0], batch_size):
        xb = x[start:start + batch_size]
        total = sum(_log_weights_chunk(model, guide, xb, s).sum(0)
                    for s in _chunks(num_samples, xb.shape[0], chunk_size, model))
        out.append(total / num_samples)
    return torch.cat(out)


# -- diagnostics ---------------------------------------------------------------------------------
def arviz_psislw(log_weights):
    """arviz's PSIS on ``(..., S)`` log-weights: ``(smoothed, khat)``. arviz < 1 has ``az.psislw``;
    arviz >= 1 moved it to arviz-stats, whose array version takes log-*likelihoods* (it negates)."""
    import arviz

    if int(arviz.__version__.split(".")[0]) < 1:
        return arviz.psislw(log_weights)
    from arviz_stats.base import array_stats

    return array_stats.psislw(-log_weights, r_eff=1.0, axis=-1)


def psis(log_weights):
    """Pareto-smoothed importance sampling of ``(S, N)`` log-weights, one fit per datapoint:
    ``(smoothed, khat)``, the smoothed log-weights ``(N, S)`` and k-hat ``(N,)`` (numpy, float64). k-hat is
    ``inf`` where the tail is too short to fit (fewer than 25 samples; the log-weights are then returned as
    they are)."""
    lw = log_weights.detach().double().cpu().numpy().T  # arviz wants the sample dim last
    num_samples = lw.shape[-1]
    if num_samples < 25:  # arviz's tail would hold <= 4 draws: no fit
        return lw, np.full(lw.shape[0], np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # arviz warns on k > 0.7: reported, not raised
        smoothed, khat = arviz_psislw(lw)
    return np.asarray(smoothed, dtype=np.float64), np.asarray(khat, dtype=np.float64).reshape(lw.shape[0])


def pareto_khat(log_weights):
    """Pareto-smoothed importance sampling k-hat of each datapoint, ``(N,)`` numpy, from
    ``(S, N)`` log-weights. ``inf`` where the tail is too short to fit (fewer than 25 samples)."""
    return psis(log_weights)[1]


def log_mean_exp_stderr(log_weights):
    """The Monte-Carlo standard error of ``log mean_s w_s`` per datapoint (``(S, N)`` log-weights to ``(N,)``),
    by the delta method: ``sqrt(sum_s wbar_s^2 - 1/S)`` with ``wbar`` the self-normalised weights, the relative
    standard error of the mean weight (``sqrt(var(w) / S) / mean(w)``, the variance estimated with 1/S).
    With heavy-tailed weights (k-hat > 0.7) it too is an underestimate: read it with the k-hat.

    >>> round(float(log_mean_exp_stderr(torch.zeros(10, 1))), 6)  # equal weights: no Monte-Carlo error
    0.0
    """
    wbar = torch.softmax(log_weights.double(), 0)
    return ((wbar ** 2).sum(0) - 1.0 / log_weights.shape[0]).clamp_min(0).sqrt()


def mc_stderr_of_mean(mc_stderr):
    """The Monte-Carlo standard error of a mean over datapoints: ``sqrt(sum_n se_n^2) / N`` (independent draws)."""
    se = torch.as_tensor(mc_stderr, dtype=torch.float64)
    return float(se.pow(2).sum().sqrt() / se.shape[0]) if se.numel() else None


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None


@dataclass
class MarginalLikelihood:
    """Per-datapoint results of :func:`estimate_marginal_likelihood` (tensors of shape ``(N,)``)."""

    log_likelihood: torch.Tensor
    elbo: torch.Tensor
    khat: np.ndarray
    num_samples: int
    #: the Monte-Carlo standard error of each datapoint's estimate (:func:`log_mean_exp_stderr`)
    mc_stderr: torch.Tensor | None = None

    @property
    def num_datapoints(self):
        return int(self.log_likelihood.shape[0])

    def summary(self):
        """Means per datapoint, the standard error of the mean log-likelihood across datapoints (std / sqrt(N)),
        its Monte-Carlo standard error (``log_likelihood_mc_stderr``: how far another run of the sampler on the
        same datapoints may land) and the PSIS diagnostics: the share of datapoints with k-hat > 0.7 and the
        max (None if not fitted)."""
        ll = self.log_likelihood.double()
        n = self.num_datapoints
        stderr = float(ll.std(unbiased=True) / math.sqrt(n)) if n > 1 else None
        fitted = np.isfinite(self.khat)
        share = float((self.khat[fitted] > KHAT_THRESHOLD).mean()) if fitted.any() else None
        return {
            "log_likelihood": float(ll.mean()),
            "log_likelihood_stderr": stderr,
            "log_likelihood_mc_stderr": None if self.mc_stderr is None else mc_stderr_of_mean(self.mc_stderr),
            "elbo": float(self.elbo.double().mean()),
            "khat_max": _finite_or_none(self.khat[fitted].max()) if fitted.any() else None,
            "khat_share_above_0_7": share,
            # None: too few samples to tell (k-hat needs num_samples >= 25)
            "log_likelihood_reliable": None if share is None else share == 0.0,
            "num_samples": int(self.num_samples),
            "num_datapoints": n,
        }


def reliability_note(summary):
    """A plain sentence on how far to trust ``summary["log_likelihood"]`` (from
    :meth:`MarginalLikelihood.summary` or ``eval.json``), with what to do; None when every k-hat is
    below 0.7.

    >>> reliability_note({"khat_share_above_0_7": 0.25, "khat_max": 1.3, "num_samples": 100})[:54]
    'the importance-sampled log-likelihood is unreliable: k'
    """
    share, khat_max, num_samples = summary.get("khat_share_above_0_7"), summary.get("khat_max"), \
        summary.get("num_samples")
    if share is None:
        return (f"the importance-sampled log-likelihood is unchecked: {num_samples} samples per datapoint are "
                "too few to fit the Pareto k-hat diagnostic; use --num-samples 100 or more")
    if share == 0:
        return None
    return (f"the importance-sampled log-likelihood is unreliable: k-hat > {KHAT_THRESHOLD} for {share:.0%} of "
            f"the datapoints (max {khat_max:.2f}), so the importance weights are heavy-tailed and the estimate "
            "may lie far below log p(x), by more than its standard error; raise --num-samples (now "
            f"{num_samples}), train longer so that the guide fits the posterior, or use a richer guide "
            "(--guide lowrank)")


@torch.no_grad()
def estimate_marginal_likelihood(model, guide, data, num_samples=100, batch_size=500, *, chunk_size=None,
                                 progress=False):
    """The importance-weighted log-likelihood, the ELBO (mean log-weight, same samples) and the
    PSIS k-hat of every datapoint, as a :class:`MarginalLikelihood`.

    Holds one ``(num_samples, batch_size)`` block of log-weights at a time (PSIS needs them all).
    ``progress`` shows a bar over the batches.
    """
    x = model_input(model, data)
    _check_counts(num_samples, batch_size)
    ll, elbo, khat, mc = [], [], [], []
    starts = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"log-likelihood, {num_samples} samples", unit="batch")
    for start in starts:
        lw = importance_log_weights(model, guide, x[start:start + batch_size], num_samples, chunk_size=chunk_size)
        ll.append(lw.logsumexp(0) - math.log(num_samples))
        elbo.append(lw.mean(0))
        khat.append(pareto_khat(lw))
        mc.append(log_mean_exp_stderr(lw))
    return MarginalLikelihood(torch.cat(ll), torch.cat(elbo), np.concatenate(khat), int(num_samples), torch.cat(mc))


# -- the closed form -----------------------------------------------------------------------------
def _linear_layer(net):
    if isinstance(net, nn.Sequential) and len(net) == 1:
        net = net[0]
    return net if isinstance(net, nn.Linear) else None


def _mixture_of(prior):
    from ..models.priors import FullCovarianceMixturePrior, MixturePrior, StandardNormalPrior

    if isinstance(prior, FullCovarianceMixturePrior):
        tril = prior.scale_tril
        return torch.log_softmax(prior.logits, -1), prior.loc, tril @ tril.mT
    if isinstance(prior, MixturePrior):
        return torch.log_softmax(prior.logits, -1), prior.loc, torch.diag_embed(prior.scale ** 2)
    if isinstance(prior, StandardNormalPrior):
        zero = prior._zero
        return zero.new_zeros(1), zero[None], torch.eye(zero.shape[0], dtype=zero.dtype, device=zero.device)[None]
    raise ConfigError(f"the closed-form evidence needs a MixturePrior, FullCovarianceMixturePrior or StandardNormalPrior, got "
                      f"{type(prior).__name__}; use log_marginal_likelihood for other priors")


@torch.no_grad()
def exact_log_marginal_likelihood(model, x):
    """``(N,)`` exact ``log p(x_n)`` of a Gaussian-mixture (or standard-normal) prior with a
    linear-Gaussian decoder ``x | z ~ Normal(W z + b, sigma)``: a Gaussian mixture in closed form.

    Raises :class:`~pyro_gmvae.errors.ConfigError` for any other model.
    """
    from ..models.decoders import Decoder
    from ..models.priors import positive

    decoder = getattr(model, "decoder", None)
    prior = getattr(model, "prior", None)
    linear = _linear_layer(decoder.net) if isinstance(decoder, Decoder) else None
    if linear is None or decoder.likelihood != "normal":
        raise ConfigError("the closed-form evidence needs a Decoder whose net is a single torch.nn.Linear and whose "
                          "likelihood is 'normal'; use log_marginal_likelihood for other decoders")
    log_pi, loc, prior_covs = _mixture_of(prior)
    weight = linear.weight  # (D, d)
    bias = linear.bias if linear.bias is not None else weight.new_zeros(weight.shape[0])
    noise_var = positive(decoder.scale_raw) ** 2
    means = loc @ weight.T + bias  # (K, D)
    covs = weight @ prior_covs @ weight.T + torch.diag_embed(noise_var.expand(means.shape))
    components = torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
    return (components.log_prob(x[:, None, :]) + log_pi).logsumexp(-1)
