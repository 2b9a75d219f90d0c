"""Annealed importance sampling (AIS) of ``log p(x)`` and its two-sided check, bidirectional Monte
Carlo (BDMC), with every cluster summed out exactly in every intermediate density.

AIS (Neal 2001) moves ``C`` chains per datapoint from the guide ``q(z | x)`` to the posterior along
the geometric path

.. math::

    f_\\beta(z) = q(z \\mid x)^{1 - \\beta}\\, p(x, z)^{\\beta}, \\qquad
    p(x, z) = \\sum_c p(x, c, z), \\qquad 0 = \\beta_0 < \\dots < \\beta_T = 1,

with one HMC transition that leaves ``f_{\\beta_t}`` invariant per step. The log-weight of a chain
is :math:`\\sum_t (\\beta_t - \\beta_{t-1}) [\\log p(x, z_{t-1}) - \\log q(z_{t-1} \\mid x)]`; the
log-mean-exp over chains is a stochastic lower bound of ``log p(x)`` (``E[log p_hat] <= log p(x)``)
that is exact as ``T`` grows.

BDMC (Grosse et al. 2015; Wu et al. 2017) simulates ``(z*, x*)`` from the model: ``z*`` is an exact
posterior draw of ``x*``, so AIS run backwards from it (``beta`` from 1 to 0) gives a stochastic
*upper* bound of ``log p(x*)``. The gap between the two bounds bounds the error of forward AIS on
data like the simulated data at that number of steps.

HMC runs in coordinates whitened by the guide's scale (a diagonal mass matrix ``1 / scale_q^2``),
with a step size per chain and datapoint adapted toward ``target_accept``. Everything is
vectorised over chains x datapoints and runs on the data's device.

>>> import torch
>>> from pyro_gmvae import ModelConfig, build
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> result = annealed_importance_sampling(model, guide, torch.rand(4, 6), num_steps=5, num_chains=2)
>>> result.log_likelihood.shape
torch.Size([4])
"""

import math
import time
from dataclasses import dataclass

import torch

from ..errors import ConfigError, check_positive
from ..memory import check_memory
from .inputs import model_input
from .latents import LatentSpace, log_joint_and_grad, simulate


def sigmoid_schedule(num_steps, delta=4.0, dtype=None, device=None):
    """``(num_steps + 1,)`` inverse temperatures from 0 to 1, dense at both ends (Grosse et al. 2015):
    a rescaled ``sigmoid(delta * (2 t / T - 1))``."""
    t = torch.linspace(-delta, delta, num_steps + 1, dtype=dtype, device=device).sigmoid()
    return (t - t[0]) / (t[-1] - t[0])


class _Target:
    """``log f_beta`` and its gradient in whitened coordinates ``u = (z - loc_q) / scale_q``."""

    def __init__(self, model, x, space):
        self.model, self.x, self.space = model, x, space

    def __call__(self, u):
        """``(log p(x, z), log q(z | x), grad log p, grad log q)``, gradients in ``u``."""
        z = self.space.loc + self.space.scale * u
        log_p, grad_p = log_joint_and_grad(self.model, self.x, self.space, z)
        with torch.enable_grad():
            zq = z.detach().requires_grad_(True)
            log_q = self.space.log_q(zq)
            (grad_q,) = torch.autograd.grad(log_q.sum(), zq)
        return log_p, log_q.detach(), grad_p * self.space.scale, grad_q * self.space.scale


def _hmc_step(target, beta, u, state, step_size, num_leapfrog):
    """One HMC transition of every chain, leaving ``f_beta`` invariant (step sizes ``(C or 1, N, 1)``).
    ``state`` is ``target(u)``; returns the new ``(u, state, acceptance probability)``."""

    def log_f(s):
        return (1 - beta) * s[1] + beta * s[0]

    def grad(s):
        return (1 - beta) * s[3] + beta * s[2]

    momentum = torch.randn(u.shape, dtype=u.dtype, device=u.device)
    h0 = log_f(state) - 0.5 * momentum.pow(2).sum(-1)
    new_u, new_state = u, state
    p = momentum + 0.5 * step_size * grad(state)
    for i in range(num_leapfrog):
        new_u = new_u + step_size * p
        new_state = target(new_u)
        p = p + (step_size if i < num_leapfrog - 1 else 0.5 * step_size) * grad(new_state)
    h1 = log_f(new_state) - 0.5 * p.pow(2).sum(-1)
    log_accept = (h1 - h0).clamp(max=0.0)
    accept_prob = torch.where(torch.isfinite(log_accept), log_accept, torch.full_like(log_accept, -math.inf)).exp()
    accept = torch.rand(accept_prob.shape, dtype=u.dtype, device=u.device) < accept_prob
    u = torch.where(accept[..., None], new_u, u)
    state = tuple(torch.where(accept[..., None] if a.dim() == u.dim() else accept, a, b)
                  for a, b in zip(new_state, state))
    return u, state, accept_prob


def _anneal(model, x, space, u0, betas, *, num_leapfrog, step_sizes=None, step_size=None, target_accept=None,
            tick=None):
    """Log-weights ``(C, N)`` of chains started at ``u0`` ``(C, N, dim)`` along ``betas`` (either
    direction), the mean acceptance probability per datapoint, and the step sizes ``(T, N, 1)``.

    With ``step_sizes`` given, transition ``t`` uses ``step_sizes[t - 1]``: fixed in advance, so that every
    kernel leaves its ``f_beta`` invariant and the weights are exact. Without, a pilot: each chain adapts its
    own step size toward ``target_accept`` from ``step_size`` and the per-datapoint geometric mean over the
    chains is returned. (A step size adapted on a chain's own state would bias its weight: we measured
    -0.2 nats at 400 steps on a linear-Gaussian model.)
    """
    target = _Target(model, x, space)
    u, state = u0, target(u0)
    pilot = step_sizes is None
    if pilot:
        step = torch.full(u.shape[:-1] + (1,), float(step_size), dtype=u.dtype, device=u.device)
        record = []
    log_w = torch.zeros(u.shape[:-1], dtype=u.dtype, device=u.device)
    accept_sum = torch.zeros_like(log_w)
    for t in range(1, len(betas)):
        log_w = log_w + (betas[t] - betas[t - 1]) * (state[0] - state[1])
        eps = step if pilot else step_sizes[t - 1]
        u, state, accept = _hmc_step(target, betas[t], u, state, eps, num_leapfrog)
        accept_sum = accept_sum + accept
        if tick is not None:
            tick()
        if pilot:
            record.append(step.log().mean(0).exp())
            step = (step * torch.exp(0.5 * (accept - target_accept))[..., None]).clamp(1e-4, 10.0)
    steps = torch.stack(record) if pilot else step_sizes
    return log_w, (accept_sum / max(len(betas) - 1, 1)).mean(0), steps


def _tune(model, x, space, betas, num_adapt_chains, num_leapfrog, step_size, target_accept, tick=None):
    """Step sizes ``(T, N, 1)`` along ``betas`` from a pilot run of ``num_adapt_chains`` chains per datapoint,
    started from the guide and then discarded."""
    u0 = (space.sample_q(num_adapt_chains) - space.loc) / space.scale
    return _anneal(model, x, space, u0, betas, num_leapfrog=num_leapfrog, step_size=step_size,
                   target_accept=target_accept, tick=tick)[2]


@dataclass
class AISResult:
    """Per-datapoint results of :func:`annealed_importance_sampling` or one direction of :func:`bdmc`."""

    log_likelihood: torch.Tensor  # (N,)
    log_weights: torch.Tensor  # (C, N)
    acceptance: torch.Tensor  # (N,) mean HMC acceptance probability
    num_steps: int
    num_chains: int

    def summary(self):
        ll = self.log_likelihood.double()
        n = ll.shape[0]
        return {
            "log_likelihood": float(ll.mean()),
            "log_likelihood_stderr": float(ll.std() / math.sqrt(n)) if n > 1 else None,
            "acceptance": float(self.acceptance.double().mean()),
            "num_steps": self.num_steps,
            "num_chains": self.num_chains,
            "num_datapoints": n,
        }


def _check_ais_args(num_steps, num_chains, num_leapfrog, batch_size, num_adapt_chains, step_size, target_accept):
    for name, value in (("num_steps", num_steps), ("num_chains", num_chains), ("num_leapfrog", num_leapfrog),
                        ("batch_size", batch_size), ("num_adapt_chains", num_adapt_chains)):
        check_positive(name, value, integer=True)
    if not step_size > 0:
        raise ConfigError(f"step_size must be positive, got {step_size!r}; pass e.g. step_size=0.2")
    if not 0 < target_accept < 1:
        raise ConfigError(f"target_accept must lie in (0, 1), got {target_accept!r}; pass e.g. target_accept=0.65")


def _forward(model, guide, x, num_steps, num_chains, hmc, tick=None):
    """Forward AIS on one batch: log-weights ``(C, N)``, acceptance ``(N,)``, the tuned step sizes."""
    space = LatentSpace(guide, x)
    betas = sigmoid_schedule(num_steps, dtype=x.dtype, device=x.device).tolist()
    steps = _tune(model, x, space, betas, hmc["num_adapt_chains"], hmc["num_leapfrog"], hmc["step_size"],
                  hmc["target_accept"], tick)
    u0 = (space.sample_q(num_chains) - space.loc) / space.scale
    log_w, acc, _ = _anneal(model, x, space, u0, betas, num_leapfrog=hmc["num_leapfrog"], step_sizes=steps,
                            tick=tick)
    return space, log_w, acc, steps


# -- the cost, said and checked before the work, and the progress ----------------------------------------

#: With a callable ``progress``, this many lines, one per equal share of the HMC transitions done...
PROGRESS_LINES = 10
#: ...once the work has run this long (a quick evaluation says nothing), and a first line with the time left
#: as soon as it has.
PROGRESS_MIN_SECONDS = 5.0


def ais_cost(num_datapoints, num_steps, num_chains, *, num_leapfrog=5, num_adapt_chains=4, directions=1):
    """The gradient evaluations of AIS: datapoints x (chains + the pilot's) x steps x leapfrog steps, once per
    direction (BDMC: 2).

    >>> ais_cost(100, 500, 16)
    5000000
    """
    return num_datapoints * (num_chains * directions + num_adapt_chains) * num_steps * num_leapfrog


def ais_memory(num_steps, num_chains, batch, *, dim, data_dim, num_clusters=1, num_adapt_chains=4, itemsize=4):
    """Bytes one batch of AIS holds at once, at least: the schedule (a tensor and its list of floats), the
    pilot's step sizes (a small tensor per step) and the chains' states, log-densities and decoded means."""
    chains = max(num_chains, num_adapt_chains) * batch
    per_chain = (8 * dim + 2 * num_clusters + 2 * data_dim) * itemsize
    return (num_steps + 1) * (itemsize + 40) + num_steps * (batch * itemsize + 250) + chains * per_chain


def check_ais_memory(model, guide, x, num_steps, num_chains, *, batch_size=100, num_adapt_chains=4,
                     simulated=None):
    """Raise :class:`ConfigError` in one line when AIS (or BDMC on ``simulated`` datapoints) of ``x`` would
    need more memory than its device has, before anything is allocated."""
    x = model_input(model, x)
    space = LatentSpace(guide, x[:1])  # the latents' size, from one datapoint
    n = x.shape[0] if simulated is None else simulated
    batch = min(batch_size, n)
    sizes = dict(dim=space.loc.shape[-1], data_dim=x.shape[-1], num_clusters=getattr(model, "num_clusters", 1),
                 num_adapt_chains=num_adapt_chains, itemsize=x.element_size())
    need = ais_memory(num_steps, num_chains, batch, **sizes)
    if simulated is not None:  # the simulated data and their latents, made at once
        need += 4 * simulated * (sizes["data_dim"] + sizes["dim"] + sizes["num_clusters"]) * sizes["itemsize"]
    head = "AIS with" if simulated is None else f"BDMC on {simulated:,} simulated datapoints (--bdmc) with"
    what = (f"{head} {num_chains:,} chains (num_chains, --num-chains) x {num_steps:,} steps (num_steps, "
            f"--num-steps), {batch:,} datapoints at a time,")
    check_memory(need, x.device, what, "lower the chains, the steps or " + ("the batch size (--batch-size)"
                                                                            if simulated is None else "--bdmc"))


def _duration(seconds):
    minutes, rest = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min {rest} s" if minutes else f"{rest} s"


class _Progress:
    """Counts HMC transitions: a bar with ``progress=True`` (a terminal), :data:`PROGRESS_LINES` lines over the
    work to a callable ``progress`` (a log, where stderr is no terminal)."""

    def __init__(self, progress, total, desc):
        self.total, self.desc, self.done, self.bar = total, desc, 0, None
        self.log = progress if callable(progress) else None
        if progress is True:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=desc, unit="step", miniters=max(1, total // 1000))
        self.started, self.line, self.timed = time.monotonic(), 1, False

    def __call__(self):
        self.done += 1
        if self.bar is not None:
            self.bar.update()
        elif self.log is not None:
            share = self.done * PROGRESS_LINES >= self.line * self.total
            if share:
                while self.line * self.total <= self.done * PROGRESS_LINES:
                    self.line += 1
            if share or not self.timed:  # and a first estimate of the time as soon as there is one
                elapsed = time.monotonic() - self.started
                if elapsed >= PROGRESS_MIN_SECONDS:
                    self.timed = True
                    left = elapsed * (self.total - self.done) / self.done
                    self.log(f"{self.desc}: {self.done / self.total:.0%} ({self.done:,} of {self.total:,} HMC "
                             f"transitions), {_duration(elapsed)} so far, about {_duration(left)} left")

    def close(self):
        if self.bar is not None:
            self.bar.close()


@torch.no_grad()
def annealed_importance_sampling(model, guide, data, num_steps=500, num_chains=16, *, num_leapfrog=5,
                                 step_size=0.2, target_accept=0.65, num_adapt_chains=4, batch_size=100,
                                 progress=False):
    """AIS estimates of ``log p(x_n)`` from the guide to the posterior, as an :class:`AISResult`.

    ``num_steps`` temperatures on a sigmoid schedule, ``num_chains`` chains per datapoint, each step one
    HMC transition of ``num_leapfrog`` leapfrog steps. The step size of every temperature and datapoint
    comes from a pilot run of ``num_adapt_chains`` chains that adapt it toward the acceptance probability
    ``target_accept`` (starting at ``step_size``, in units of the guide's scale); the pilot is discarded.
    Datapoints go in batches of ``batch_size``. ``progress``: True for a bar over the HMC transitions, a
    callable for :data:`PROGRESS_LINES` lines over them. A run that would not fit in the memory of the
    data's device is refused before it starts (:func:`check_ais_memory`).
    """
    _check_ais_args(num_steps, num_chains, num_leapfrog, batch_size, num_adapt_chains, step_size, target_accept)
    x = model_input(model, data)
    check_ais_memory(model, guide, x, num_steps, num_chains, batch_size=batch_size,
                     num_adapt_chains=num_adapt_chains)
    hmc = dict(num_leapfrog=num_leapfrog, step_size=step_size, target_accept=target_accept,
               num_adapt_chains=num_adapt_chains)
    log_w, acc = [], []
    tick = _Progress(progress, 2 * num_steps * math.ceil(x.shape[0] / batch_size), f"AIS, {num_steps} steps")
    try:
        for start in range(0, x.shape[0], batch_size):
            _, w, a, _ = _forward(model, guide, x[start:start + batch_size], num_steps, num_chains, hmc, tick)
            log_w.append(w)
            acc.append(a)
    finally:
        tick.close()
    log_w = torch.cat(log_w, -1)
    return AISResult(log_w.logsumexp(0) - math.log(num_chains), log_w, torch.cat(acc), int(num_steps),
                     int(num_chains))


@dataclass
class BDMCResult:
    """Both bounds of ``log p(x*)`` on simulated data ``x`` (per datapoint, ``(N,)``)."""

    x: torch.Tensor
    lower: AISResult
    upper: AISResult

    @property
    def gap(self):
        return self.upper.log_likelihood - self.lower.log_likelihood

    def summary(self):
        gap = self.gap.double()
        return {
            "lower": float(self.lower.log_likelihood.double().mean()),
            "upper": float(self.upper.log_likelihood.double().mean()),
            "gap": float(gap.mean()),
            "gap_max": float(gap.max()),
            # the Monte-Carlo error of the mean gap: both bounds are estimates, so a gap can be negative by chance
            "gap_stderr": float(gap.std() / math.sqrt(gap.shape[0])) if gap.shape[0] > 1 else None,
            "acceptance_forward": float(self.lower.acceptance.double().mean()),
            "acceptance_reverse": float(self.upper.acceptance.double().mean()),
            "num_steps": self.lower.num_steps,
            "num_chains": self.lower.num_chains,
            "num_datapoints": int(gap.shape[0]),
        }


@torch.no_grad()
def bdmc(model, guide, num_datapoints, like, num_steps=500, num_chains=16, *, num_leapfrog=5, step_size=0.2,
         target_accept=0.65, num_adapt_chains=4, batch_size=100, progress=False):
    """Bidirectional Monte Carlo: simulate ``num_datapoints`` pairs ``(z*, x*)`` from the model, run AIS
    forward (a stochastic lower bound of ``log p(x*)``) and in reverse from ``z*`` (an upper bound), as a
    :class:`BDMCResult`. ``like`` is data of the model's shape (a tensor or Dataset), read for its shape only.
    The reverse chains reuse the forward pilot's step sizes, so that they do not depend on ``z*``.
    """
    check_positive("num_datapoints", num_datapoints, integer=True)
    _check_ais_args(num_steps, num_chains, num_leapfrog, batch_size, num_adapt_chains, step_size, target_accept)
    template = model_input(model, like)[:1]
    check_ais_memory(model, guide, template, num_steps, num_chains, batch_size=batch_size,
                     num_adapt_chains=num_adapt_chains, simulated=num_datapoints)
    x_all, latents = simulate(model, template.expand(num_datapoints, template.shape[-1]).clone())
    hmc = dict(num_leapfrog=num_leapfrog, step_size=step_size, target_accept=target_accept,
               num_adapt_chains=num_adapt_chains)
    fw, fa, rw, ra = [], [], [], []
    tick = _Progress(progress, 3 * num_steps * math.ceil(num_datapoints / batch_size), f"BDMC, {num_steps} steps")
    for start in range(0, num_datapoints, batch_size):
        xb = x_all[start:start + batch_size]
        space, w, a, steps = _forward(model, guide, xb, num_steps, num_chains, hmc, tick)
        fw.append(w)
        fa.append(a)
        betas = sigmoid_schedule(num_steps, dtype=xb.dtype, device=xb.device).flip(0).tolist()
        # reverse transition t targets beta_{T-t}, whose forward step size is steps[T-t-1] (t = T: q itself)
        reverse_steps = torch.cat([steps.flip(0)[1:], steps[:1]])
        z_star = space.flatten({n: latents[n][start:start + batch_size] for n in space.names})
        u0 = ((z_star - space.loc) / space.scale).expand((num_chains,) + z_star.shape).clone()
        w, a, _ = _anneal(model, xb, space, u0, betas, num_leapfrog=num_leapfrog, step_sizes=reverse_steps,
                          tick=tick)
        rw.append(w)
        ra.append(a)
    tick.close()
    fw, rw = torch.cat(fw, -1), torch.cat(rw, -1)
    lower = AISResult(fw.logsumexp(0) - math.log(num_chains), fw, torch.cat(fa), int(num_steps), int(num_chains))
    # The reverse weights estimate 1 / p(x*) without bias, so minus their log-mean-exp is an upper bound.
    upper = AISResult(-(rw.logsumexp(0) - math.log(num_chains)), -rw, torch.cat(ra), int(num_steps),
                      int(num_chains))
    return BDMCResult(x_all, lower, upper)
