"""Importance sampling of ``log p(x)`` with a proposal fitted to each datapoint's own posterior.

The amortized guide ``q(z | x)`` is often narrower than the posterior (the amortization gap), and
then the importance weights have no finite variance (PSIS k-hat > 0.7). This estimator

1. refines a diagonal Gaussian per datapoint, starting from the guide's location and scale, by
   Adam steps on that datapoint's own ELBO (all datapoints at once: the objective is a sum of
   independent terms and Adam is elementwise, so this is one optimiser per datapoint);
2. widens it into a heavier-tailed proposal: a multivariate Student-t (``df`` degrees of freedom)
   at the refined location with ``widen`` times the refined scale, or a Gaussian, or a defensive
   mixture ``(1 - alpha) refined + alpha q``;
3. optionally adapts it to the posterior by importance-weighted moment matching
   (:func:`moment_match`, ``num_adapt_rounds``): a local fit (a Laplace approximation's curvature at
   one point of a ReLU decoder's piecewise landscape) can be much narrower than the posterior in
   some directions, which leaves the weights without finite variance; the posterior's own mean and
   covariance, estimated from PSIS-smoothed weights of a pilot, are not local;
4. picks ``widen`` per datapoint from ``widen_grid`` by a pilot of ``num_pilot`` draws: the largest
   PSIS effective sample size among the factors whose pilot k-hat is below 0.7 (the widest factor
   when none is), then draws ``num_samples`` fresh samples for the estimate.

.. math::

    \\log \\hat p(x) = \\log \\frac{1}{S} \\sum_s \\frac{\\sum_c p(x, c, z_s)}{r(z_s \\mid x)},
    \\qquad z_s \\sim r(z \\mid x),

with every cluster summed exactly (:func:`~pyro_gmvae.evaluation.latents.log_joint`).

>>> import torch
>>> from pyro_gmvae import ModelConfig, build
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> result = refined_marginal_likelihood(model, guide, torch.rand(4, 6), num_samples=30, num_refine_steps=3,
...                                      num_pilot=30)
>>> result.log_likelihood.shape
torch.Size([4])
"""

import math
from dataclasses import dataclass

import numpy as np
import pyro.distributions as dist
import torch

from ..errors import ConfigError, check_positive
from .inputs import model_input
from .latents import LatentSpace, log_joint
from .marginal import KHAT_THRESHOLD, chunk_samples, log_mean_exp_stderr, mc_stderr_of_mean, psis

#: ``defensive``: ``(1 - alpha)`` a Gaussian fit + ``alpha`` the guide; ``defensive-t``: the same with a Student-t fit
#: (Hesterberg 1995's defensive mixture: a weight is at most ``1 / alpha`` times the guide's own, so the estimate
#: cannot be much worse than the guide's importance sampling however poor the fit)
PROPOSALS = ("student-t", "normal", "defensive", "defensive-t")
_STUDENT_T = ("student-t", "defensive-t")
_DEFENSIVE = ("defensive", "defensive-t")
FITS = ("elbo", "laplace", "laplace-mixture")


def effective_sample_size(log_weights):
    """``(N,)`` Kish effective sample size ``(sum w)^2 / sum w^2`` of ``(S, N)`` log-weights."""
    return (2 * log_weights.logsumexp(0) - (2 * log_weights).logsumexp(0)).exp()


def refine(model, x, space, num_steps=300, lr=0.05, num_particles=8):
    """``(loc, scale)`` ``(N, dim)``: each datapoint's diagonal Gaussian after ``num_steps`` Adam steps on its
    own ELBO (``num_particles`` reparameterized draws a step, the entropy in closed form), from the guide's;
    the learning rate decays from ``lr`` to ``lr / 10``."""
    loc = space.loc.clone().requires_grad_(True)
    log_scale = space.scale.log().clone().requires_grad_(True)
    if num_steps == 0:
        return loc.detach(), log_scale.exp().detach()
    optim = torch.optim.Adam([loc, log_scale], lr=lr)
    # the last iterates of a constant-rate Adam jitter by ~lr around the optimum: decay to lr / 10
    schedule = torch.optim.lr_scheduler.ExponentialLR(optim, 0.1 ** (1 / num_steps))
    with torch.enable_grad():
        for _ in range(num_steps):
            eps = torch.randn((num_particles,) + loc.shape, dtype=loc.dtype, device=loc.device)
            elbo = log_joint(model, x, space, loc + log_scale.exp() * eps).mean(0) + log_scale.sum(-1)
            # gradients of the latents only: the model's own parameters keep no .grad from evaluation
            loc.grad, log_scale.grad = torch.autograd.grad(-elbo.sum(), [loc, log_scale])
            optim.step()
            schedule.step()
    return loc.detach(), log_scale.exp().detach()


def _grad_and_hessian(model, x, space, z, given=None):
    """``log p(x, z)`` ``(N,)``, its gradient ``(N, dim)`` and Hessian ``(N, dim, dim)`` at ``z`` ``(N, dim)``:
    one double-backward pass per latent dimension, every datapoint at once (their Hessians are blocks)."""
    with torch.enable_grad():
        z = z.detach().requires_grad_(True)
        value = log_joint(model, x, space, z[None], given)[0]
        (grad,) = torch.autograd.grad(value.sum(), z, create_graph=True)
        rows = [torch.autograd.grad(grad[:, i].sum(), z, retain_graph=i < z.shape[-1] - 1)[0]
                for i in range(z.shape[-1])]
    hessian = torch.stack(rows, -2)
    return value.detach(), grad.detach(), (0.5 * (hessian + hessian.transpose(-1, -2))).detach()


def _precision_factor(neg_hessian, floor):
    """Eigenvectors and eigenvalues of ``-H``, the eigenvalues floored at ``floor`` so that it is a precision."""
    eigvals, eigvecs = torch.linalg.eigh(neg_hessian)
    return eigvecs, eigvals.clamp(min=floor)


def laplace(model, x, space, num_steps=10, max_step=3.0, floor=1e-2, given=None, start=None):
    """``(loc, scale_tril)``: each datapoint's Laplace approximation of ``p(z | x)``, with Newton steps on
    ``log p(x, z)`` from the guide's location (each at most ``max_step`` guide scales long) and the
    covariance ``(-H)^{-1}`` at the end, the eigenvalues of ``-H`` floored at ``floor / scale_q^2``.
    ``given`` fixes discrete sites (:func:`~pyro_gmvae.evaluation.latents.log_joint`); ``start`` replaces the
    guide's location as the first iterate."""
    z = (space.loc if start is None else start).clone()
    whiten = space.scale  # Newton in the guide's whitened coordinates: the floor and step cap are scale-free
    for step in range(num_steps + 1):
        _, grad, hessian = _grad_and_hessian(model, x, space, z, given)
        neg = -hessian * whiten[:, :, None] * whiten[:, None, :]
        eigvecs, eigvals = _precision_factor(neg, floor)
        if step == num_steps:
            break
        g = grad * whiten
        delta = (eigvecs @ ((eigvecs.transpose(-1, -2) @ g[..., None])[..., 0] / eigvals)[..., None])[..., 0]
        norm = delta.norm(dim=-1, keepdim=True)
        delta = delta * (max_step / norm).clamp(max=1.0)
        z = z + whiten * delta
    # covariance in whitened units V diag(1 / lambda) V^T; its lower factor, mapped back by the scale
    return z, _tril_of_inverse(eigvecs, eigvals) * whiten[:, :, None]


def _tril_of_inverse(eigvecs, eigvals):
    """Lower-triangular ``L``, positive diagonal, with ``L L^T = V diag(1 / lambda) V^T``: from the QR of
    ``(V diag(lambda^-1/2))^T`` rather than the Cholesky of the product, which fails in float32 once the
    eigenvalues span more than its precision (data of scale 1e6 under a Normal likelihood)."""
    _, r = torch.linalg.qr((eigvecs * eigvals.rsqrt()[..., None, :]).transpose(-1, -2))
    tril = r.transpose(-1, -2)
    return tril * torch.where(tril.diagonal(dim1=-2, dim2=-1) < 0, -1.0, 1.0).to(tril)[..., None, :]


def laplace_mixture(model, x, space, num_components=2, num_steps=3):
    """A mixture of Laplace approximations, one per cluster for the ``num_components`` clusters most probable
    at the global Laplace mode: ``(weights (N, M), locs (N, M, dim), scale_trils (N, M, dim, dim))``, each
    component fitted to ``p(x, c_m, z)`` and weighted by its Laplace evidence. A posterior spread over
    clusters has a mode per cluster, which one Gaussian or Student-t cannot cover."""
    loc, scale_tril = laplace(model, x, space, num_steps)
    sites = tuple(getattr(model, "cluster_sites", ()))
    if not sites:
        return loc.new_zeros(loc.shape[0], 1), loc[:, None], scale_tril[:, None]
    site, num_clusters = sites[-1], model.num_clusters
    n = x.shape[0]
    per_cluster = torch.stack([log_joint(model, x, space, loc[None], {site: loc.new_full((n,), k).long()})[0]
                               for k in range(num_clusters)], -1)
    top = per_cluster.topk(min(num_components, num_clusters), -1).indices  # (N, M)
    log_w, locs, trils = [], [], []
    for m in range(top.shape[-1]):
        given = {site: top[:, m]}
        mode, tril = laplace(model, x, space, num_steps, given=given, start=loc)
        value = log_joint(model, x, space, mode[None], given)[0]
        log_w.append(value + 0.5 * loc.shape[-1] * math.log(2 * math.pi)
                     + tril.diagonal(dim1=-2, dim2=-1).log().sum(-1))
        locs.append(mode)
        trils.append(tril)
    return torch.stack(log_w, -1).log_softmax(-1), torch.stack(locs, 1), torch.stack(trils, 1)


def _located(kind, loc, scale_tril, df):
    """A multivariate Student-t (``kind='student-t'``) or Gaussian at ``loc`` with Cholesky ``scale_tril``."""
    if kind in _STUDENT_T:
        return dist.MultivariateStudentT(torch.as_tensor(df, dtype=loc.dtype, device=loc.device), loc, scale_tril)
    return dist.MultivariateNormal(loc, scale_tril=scale_tril)


class MixtureProposal:
    """``sum_m w_m t_df(z; loc_m, widen scale_tril_m)`` per datapoint (or Gaussians: ``kind='normal'``)."""

    def __init__(self, kind, log_weights, locs, scale_trils, widen, df=5.0):
        scale_trils = scale_trils * widen[:, None, None, None]
        self.log_weights = log_weights  # (N, M)
        self.dist = _located(kind, locs, scale_trils, df)

    def sample(self, num_samples):
        z = self.dist.sample((num_samples,))  # (S, N, M, dim)
        pick = dist.Categorical(logits=self.log_weights).sample((num_samples,))  # (S, N)
        return z.gather(-2, pick[..., None, None].expand(z.shape[:-2] + (1, z.shape[-1])))[..., 0, :]

    def log_prob(self, z):
        return (self.dist.log_prob(z[..., None, :]) + self.log_weights).logsumexp(-1)


class Proposal:
    """A per-datapoint proposal ``r(z | x)`` over flat latents ``(N, dim)``: location ``loc`` ``(N, dim)``
    and Cholesky factor ``scale_tril`` ``(N, dim, dim)``, widened by ``widen`` ``(N,)``."""

    def __init__(self, kind, loc, scale_tril, space, widen, df=5.0, alpha=0.2):
        if kind not in PROPOSALS:
            raise ConfigError(f"unknown proposal {kind!r}; choose one of: {', '.join(PROPOSALS)}")
        self.kind, self.space, self.alpha = kind, space, alpha
        scale_tril = scale_tril * widen[:, None, None]
        self.dist = _located(kind, loc, scale_tril, df)

    def sample(self, num_samples):
        z = self.dist.sample((num_samples,))
        if self.kind in _DEFENSIVE:
            from_q = torch.rand(z.shape[:-1], dtype=z.dtype, device=z.device) < self.alpha
            z = torch.where(from_q[..., None], self.space.sample_q(num_samples), z)
        return z

    def log_prob(self, z):
        lp = self.dist.log_prob(z)
        if self.kind in _DEFENSIVE:
            lp = torch.logaddexp(lp + math.log1p(-self.alpha), self.space.log_q(z) + math.log(self.alpha))
        return lp


def proposal_log_weights(model, x, space, proposal, num_samples, chunk_size=None, return_draws=False):
    """``(num_samples, N)`` log-weights ``log p(x, z) - log r(z | x)``, ``z ~ r``, in chunks of samples
    (with ``return_draws``, also the draws ``z`` ``(num_samples, N, dim)``)."""
    size = chunk_samples(model, x.shape[0], chunk_size)
    out, draws = [], []
    for start in range(0, num_samples, size):
        z = proposal.sample(min(size, num_samples - start))
        out.append(log_joint(model, x, space, z) - proposal.log_prob(z))
        if return_draws:
            draws.append(z)
    return (torch.cat(out), torch.cat(draws)) if return_draws else torch.cat(out)


def psis_weights(log_weights):
    """Pareto-smoothed self-normalised importance weights ``(S, N)`` of ``(S, N)`` log-weights (each column
    sums to one: the largest raw weights replaced by the fitted generalised Pareto tail's quantiles) and the
    fit's k-hat ``(N,)`` (numpy; ``inf`` below 25 samples, where the raw weights are normalised)."""
    smoothed, khat = psis(log_weights)
    smoothed = torch.as_tensor(smoothed, device=log_weights.device).T
    return (smoothed - smoothed.logsumexp(0)).exp().to(log_weights.dtype), khat


#: The default pilot of a moment-matching round: this many draws per latent dimension (a covariance in more
#: dimensions needs more), at least ``MIN_ADAPT_DRAWS``.
ADAPT_DRAWS_PER_DIM = 25
MIN_ADAPT_DRAWS = 200
#: Moment matching trusts a pilot's moments in proportion ESS / (ESS + this): a pilot with a few effective
#: draws moves the proposal a little, one with hundreds replaces it.
MOMENT_PRIOR_DRAWS = 20.0


def moment_match(model, x, space, loc, scale_tril, num_rounds=2, num_samples=250, kind="student-t", df=5.0,
                 widen=1.1, alpha=0.2, chunk_size=None):
    """``(loc, scale_tril)`` ``(N, dim)``, ``(N, dim, dim)`` adapted to each datapoint's posterior by
    importance-weighted moment matching (adaptive importance sampling; cf. Paananen et al. 2021, "Implicitly
    adaptive importance sampling"): each round draws ``num_samples`` from the current proposal (``kind``,
    ``widen`` times its scale), PSIS-smooths the weights, and moves the location to the weighted posterior
    mean and the scale matrix to the weighted posterior covariance, shrunk toward the current one by the
    pilot's effective sample size ``ESS / (ESS + MOMENT_PRIOR_DRAWS)``. A Student-t proposal built on them
    has ``df / (df - 2)`` times the posterior's covariance: heavier and wider, as importance sampling wants.
    Returns ``(loc, scale_tril, khat)``, ``khat`` ``(N,)`` the PSIS k-hat of the last round's pilot (of the
    proposal before that round's update: above 0.7, the moments came from a poor pilot)."""
    check_positive("num_samples", num_samples, integer=True)
    n, dim = loc.shape
    eye = torch.eye(dim, dtype=loc.dtype, device=loc.device)
    khat = np.full(n, np.nan)
    for _ in range(num_rounds):
        r = Proposal(kind, loc, scale_tril, space, loc.new_full((n,), widen), df, alpha)
        lw, z = proposal_log_weights(model, x, space, r, num_samples, chunk_size, return_draws=True)
        w, khat = psis_weights(lw)  # (S, N), (N,)
        mean = torch.einsum("sn,snd->nd", w, z)
        centred = z - mean
        cov = torch.einsum("sn,snd,sne->nde", w, centred, centred)
        ess = 1 / (w ** 2).sum(0)
        trust = (ess / (ess + MOMENT_PRIOR_DRAWS))[:, None]
        loc = trust * mean + (1 - trust) * loc
        cov = trust[..., None] * cov + (1 - trust[..., None]) * scale_tril @ scale_tril.transpose(-1, -2)
        scale_tril = torch.linalg.cholesky(cov + 1e-6 * cov.diagonal(dim1=-2, dim2=-1).mean(-1)[:, None, None] * eye)
    return loc, scale_tril, khat


def _psis(log_weights):
    """PSIS k-hat ``(N,)`` and the PSIS effective sample size ``(N,)`` (numpy)."""
    w, khat = psis_weights(log_weights)
    return khat, (1 / (w.double() ** 2).sum(0)).cpu().numpy()


@dataclass
class RefinedMarginalLikelihood:
    """Per-datapoint results of :func:`refined_marginal_likelihood` (``(N,)`` each)."""

    log_likelihood: torch.Tensor
    khat: np.ndarray
    ess: np.ndarray  # PSIS effective sample size of the final draws
    widen: torch.Tensor  # the scale factor each datapoint's proposal uses
    num_samples: int
    proposal: str
    #: the Monte-Carlo standard error of each datapoint's estimate (:func:`~.marginal.log_mean_exp_stderr`)
    mc_stderr: torch.Tensor | None = None

    def summary(self):
        ll = self.log_likelihood.double()
        n = ll.shape[0]
        fitted = np.isfinite(self.khat)
        return {
            "log_likelihood": float(ll.mean()),
            "log_likelihood_stderr": float(ll.std() / math.sqrt(n)) if n > 1 else None,
            "log_likelihood_mc_stderr": None if self.mc_stderr is None else mc_stderr_of_mean(self.mc_stderr),
            "khat_share_above_0_7": float((self.khat[fitted] > KHAT_THRESHOLD).mean()) if fitted.any() else None,
            "khat_max": float(self.khat[fitted].max()) if fitted.any() else None,
            "ess_mean": float(self.ess.mean()),
            "ess_min": float(self.ess.min()),
            "widen_mean": float(self.widen.double().mean()),
            "num_samples": self.num_samples,
            "proposal": self.proposal,
            "num_datapoints": n,
        }


def _check_args(proposal, widen_grid, df, alpha, num_samples, num_pilot, batch_size, num_refine_particles):
    if proposal not in PROPOSALS:
        raise ConfigError(f"unknown proposal {proposal!r}; choose one of: {', '.join(PROPOSALS)}")
    for name, value in (("num_samples", num_samples), ("num_pilot", num_pilot), ("batch_size", batch_size),
                        ("num_refine_particles", num_refine_particles)):
        check_positive(name, value, integer=True)
    if not widen_grid or any(not w > 0 for w in widen_grid):
        raise ConfigError(f"widen_grid must be positive scale factors, got {widen_grid!r}; pass e.g. (1.0, 1.5)")
    if not df > 0:
        raise ConfigError(f"df must be positive, got {df!r}; pass e.g. df=5")
    if not 0 < alpha < 1:
        raise ConfigError(f"alpha must lie in (0, 1), got {alpha!r}; pass e.g. alpha=0.2")


@torch.no_grad()
def refined_marginal_likelihood(model, guide, data, num_samples=500, *, fit="elbo", proposal="student-t",
                                widen_grid=(1.0, 1.2, 1.5, 2.0), df=5.0, alpha=0.2, num_refine_steps=300,
                                lr=0.05, num_refine_particles=8, num_newton_steps=10, num_components=2, num_pilot=200,
                                num_adapt_rounds=0, num_adapt_samples=None, max_adapt_rounds=None, batch_size=100,
                                chunk_size=None, progress=False):
    """Importance-sampled ``log p(x_n)`` under a refined, heavier-tailed proposal per datapoint (see the
    module docstring), with PSIS k-hat and effective sample size, as a :class:`RefinedMarginalLikelihood`.

    ``fit`` is ``'elbo'`` (a diagonal Gaussian by ``num_refine_steps`` Adam steps on each datapoint's ELBO;
    ``0`` keeps the guide's location and scale) or ``'laplace'`` (a full covariance at the posterior mode,
    :func:`laplace`, ``num_newton_steps`` Newton steps) or ``'laplace-mixture'`` (one Laplace fit per cluster for
    the ``num_components`` most probable clusters, :func:`laplace_mixture`; ``proposal`` 'student-t' or 'normal').
    ``num_adapt_rounds`` rounds of :func:`moment_match` with ``num_adapt_samples`` draws each (default
    :data:`ADAPT_DRAWS_PER_DIM` per latent dimension, at least :data:`MIN_ADAPT_DRAWS`) then adapt the
    fitted location and covariance to the posterior (not with ``'laplace-mixture'``); the first factor in
    ``widen_grid`` widens their pilots. The datapoints whose last pilot still has k-hat above 0.7 get further
    rounds, one at a time, up to ``max_adapt_rounds`` in all (default ``num_adapt_rounds``: none). One factor in
    ``widen_grid`` skips the widening pilot.
    """
    if fit not in FITS:
        raise ConfigError(f"unknown fit {fit!r}; choose one of: {', '.join(FITS)}")
    if fit == "laplace-mixture" and proposal in _DEFENSIVE:
        raise ConfigError(f"fit='laplace-mixture' takes proposal 'student-t' or 'normal', not {proposal!r}")
    if isinstance(num_adapt_rounds, bool) or not isinstance(num_adapt_rounds, int) or num_adapt_rounds < 0:
        raise ConfigError(f"num_adapt_rounds must be a non-negative integer, got {num_adapt_rounds!r}; pass e.g. 2")
    if num_adapt_rounds and fit == "laplace-mixture":
        raise ConfigError("moment matching (num_adapt_rounds > 0) adapts one location and covariance; "
                          "fit='laplace-mixture' has one per component: pass num_adapt_rounds=0 or fit='laplace'")
    if num_adapt_rounds and num_adapt_samples is not None:
        check_positive("num_adapt_samples", num_adapt_samples, integer=True)
    max_adapt_rounds = num_adapt_rounds if max_adapt_rounds is None else max_adapt_rounds
    if (isinstance(max_adapt_rounds, bool) or not isinstance(max_adapt_rounds, int)
            or max_adapt_rounds < num_adapt_rounds):
        raise ConfigError(f"max_adapt_rounds must be an integer >= num_adapt_rounds ({num_adapt_rounds}), got "
                          f"{max_adapt_rounds!r}; pass e.g. max_adapt_rounds={num_adapt_rounds + 4}")
    widen_grid = tuple(float(w) for w in widen_grid)
    _check_args(proposal, widen_grid, df, alpha, num_samples, num_pilot, batch_size, num_refine_particles)
    if isinstance(num_refine_steps, bool) or not isinstance(num_refine_steps, int) or num_refine_steps < 0:
        raise ConfigError(f"num_refine_steps must be a non-negative integer, got {num_refine_steps!r}; pass e.g. 300")
    x = model_input(model, data)
    starts = range(0, x.shape[0], batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"refined IS, {num_samples} samples", unit="batch")
    ll, khat, ess, widen, mc = [], [], [], [], []
    for start in starts:
        xb = x[start:start + batch_size]
        space = LatentSpace(guide, xb)
        if fit == "laplace-mixture":
            mixture = laplace_mixture(model, xb, space, num_components, num_newton_steps)
        elif fit == "laplace":
            loc, scale_tril = laplace(model, xb, space, num_newton_steps)
        else:
            loc, scale = refine(model, xb, space, num_refine_steps, lr, num_refine_particles)
            scale_tril = torch.diag_embed(scale)
        if num_adapt_rounds:
            draws = num_adapt_samples or max(MIN_ADAPT_DRAWS, ADAPT_DRAWS_PER_DIM * loc.shape[-1])
            adapt = dict(num_samples=draws, kind=proposal, df=df, widen=widen_grid[0], alpha=alpha,
                         chunk_size=chunk_size)
            loc, scale_tril, pilot_khat = moment_match(model, xb, space, loc, scale_tril, num_adapt_rounds, **adapt)
            for _ in range(max_adapt_rounds - num_adapt_rounds):  # more rounds where the pilot failed PSIS
                poor = torch.as_tensor(pilot_khat > KHAT_THRESHOLD, device=xb.device).nonzero()[:, 0]
                if not len(poor):
                    break
                sub = moment_match(model, xb[poor], LatentSpace(guide, xb[poor]), loc[poor], scale_tril[poor], 1,
                                   **adapt)
                loc, scale_tril = loc.index_copy(0, poor, sub[0]), scale_tril.index_copy(0, poor, sub[1])
                pilot_khat[poor.cpu().numpy()] = sub[2]

        def make(widen):
            if fit == "laplace-mixture":
                return MixtureProposal(proposal, *mixture, widen, df)
            return Proposal(proposal, loc, scale_tril, space, widen, df, alpha)

        factor = xb.new_full((xb.shape[0],), widen_grid[0])
        if len(widen_grid) > 1:
            scores = []
            for w in widen_grid:
                r = make(xb.new_full((xb.shape[0],), w))
                k, e = _psis(proposal_log_weights(model, xb, space, r, num_pilot, chunk_size))
                scores.append(np.where(k < KHAT_THRESHOLD, e, -1.0 / (1.0 + w)))  # no pass: widest wins
            best = np.asarray(scores).argmax(0)
            factor = torch.as_tensor(np.asarray(widen_grid)[best], dtype=xb.dtype, device=xb.device)
        r = make(factor)
        lw = proposal_log_weights(model, xb, space, r, num_samples, chunk_size)
        k, e = _psis(lw)
        ll.append(lw.logsumexp(0) - math.log(num_samples))
        mc.append(log_mean_exp_stderr(lw))
        khat.append(k)
        ess.append(e)
        widen.append(factor)
    return RefinedMarginalLikelihood(torch.cat(ll), np.concatenate(khat), np.concatenate(ess), torch.cat(widen),
                                     int(num_samples), proposal, torch.cat(mc))
