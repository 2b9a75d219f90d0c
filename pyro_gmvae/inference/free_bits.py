"""The minimum information constraint (free bits) as a Pyro effect handler.

GMVAE (Dilokthanakul et al. 2016, after Kingma et al. 2016) replaces a KL term of the ELBO by
``max(lambda, KL)``, where KL is the minibatch mean. Since ``max(lambda, KL) = KL + relu(lambda - KL)``
the constrained objective is

.. math::

    \\mathcal{L}_\\lambda = \\mathrm{ELBO} - N \\,\\mathrm{relu}(\\lambda - \\overline{\\mathrm{KL}})

with :math:`N` the number of datapoints in the minibatch (our ELBO is a sum over the data plate,
so the per-datapoint objective of the paper is multiplied by :math:`N`). :class:`FreeBitsMessenger`
adds exactly this correction to the model as one ``pyro.factor`` site, so the unchanged
:class:`~pyro.infer.TraceEnum_ELBO` and :class:`~pyro.infer.JitTraceEnum_ELBO` optimise it.

Targets:

- an **enumerated** site (``"cluster"``): ``KL(p(cluster | rest) || p(cluster))`` with the exact
  responsibilities from the enumerated log-factors (GMVAE's z-prior term);
- a **guided cluster** site (``cluster_inference`` other than ``exact``, see
  :mod:`pyro_gmvae.inference.cluster_inference`): ``KL(q(cluster | x) || p(cluster))`` in closed form from
  the two distributions' logits, enumerated parents of the cluster in the model summed out;
- a **guided** continuous site (``"z"``, ``"w"``): ``log q(z | x) - log p(z)`` at the guide's sample
  (Kingma et al.'s free bits), for the whole site (``group="site"``), per dimension (``group="dim"``)
  or per group of ``g`` dimensions (``group=g``); enumerated parents of the site are summed out.

With vectorized particles the correction is computed per particle, and the ELBO's mean over
particles counts it once. Evaluate a trained model with the plain model: the handler is a
training device only.
"""

import functools

import pyro
import pyro.distributions as dist
import torch
import torch.nn.functional as F
from pyro.poutine.messenger import Messenger
from pyro.poutine.replay_messenger import ReplayMessenger
from pyro.poutine.runtime import _PYRO_STACK
from pyro.poutine.util import site_is_subsample

from ..errors import ConfigError
from ..sites import CLUSTER, DATA_PLATE

PENALTY_SITE = "_free_bits_penalty"
_PARTICLE_PLATE = "num_particles_vectorized"


def _depends_on(t, dim):
    return t.dim() >= -dim and t.shape[dim] > 1


def _batched_along(fn, dim):
    shape = fn.batch_shape
    return len(shape) >= -dim and shape[dim] > 1


def _is_categorical(fn):
    return isinstance(fn, (dist.Categorical, torch.distributions.relaxed_categorical.ExpRelaxedCategorical))


def _logsumexp_dims(t, dims):
    for d in sorted(set(dims)):
        if t.dim() >= -d:
            t = t.logsumexp(d, keepdim=True)
    return t


def site_log_prob(msg):
    """The log-density of a sample message at its value, masked and scaled as the ELBO counts it."""
    lp = msg["fn"].log_prob(msg["value"])
    if msg["mask"] is not None and msg["mask"] is not True:
        lp = lp.masked_fill(~msg["mask"], 0.0)
    scale = msg["scale"]
    return lp if isinstance(scale, (int, float)) and scale == 1.0 else lp * scale


def guide_trace():
    """The guide's trace that the ELBO replays the model against (None outside an ELBO).

    Pyro offers no public hook for it: ``poutine.replay`` passes the guide's values and ``infer`` to the
    model's sites, not the guide's distributions, which the closed-form and per-site KLs need."""
    for frame in reversed(_PYRO_STACK):
        if isinstance(frame, ReplayMessenger) and frame.trace is not None:
            return frame.trace
    return None


# -- the KL of each kind of site: pure functions of the model's sample messages ---------------------------
def enumerated_kl(records, enum_dims, site):
    """``KL(p(site | rest) || p(site))`` of an enumerated ``site``, from the exact responsibilities of the
    enumerated log-factors; other enumerated sites are summed out."""
    target = enum_dims[site]
    others = [d for d in enum_dims.values() if d != target]
    all_dims = list(enum_dims.values())
    # Only enumerated sites and sites whose distribution is batched along an enumeration dim can
    # depend on the clusters; the others (the decoder's x, GMVAE's w) are skipped, not recomputed.
    factors = {name: site_log_prob(m) for name, m in records.items()
               if name in enum_dims or any(_batched_along(m["fn"], d) for d in all_dims)}
    joint = sum(f for f in factors.values() if any(_depends_on(f, d) for d in all_dims))
    prior = sum(factors[name] for name in enum_dims)
    log_post = joint - _logsumexp_dims(joint, all_dims)
    log_post = _logsumexp_dims(log_post, others)
    log_prior = _logsumexp_dims(prior - _logsumexp_dims(prior, all_dims), others)
    return (log_post.exp() * (log_post - log_prior)).sum(target, keepdim=True)[..., None]


def categorical_kl(records, enum_dims, site, guide_fn, guide_names):
    """``KL(q(c | x) || p(c))`` in closed form from the logits of guide and model (their relaxed
    counterparts have the same logits); enumerated parents of ``c`` in the model are summed out."""
    log_q = guide_fn.logits.log_softmax(-1)
    log_p = records[site]["fn"].logits.log_softmax(-1)
    parents = [name for name in enum_dims if name != site and name not in guide_names]
    if parents:  # log p(c) = log sum_parents p(parents) p(c | parents), every c on the last dim
        log_p = log_p + sum(site_log_prob(records[name]) for name in parents)[..., None]
        log_p = _logsumexp_dims(log_p, [enum_dims[name] - 1 for name in parents])
    return (log_q.exp() * (log_q - log_p)).sum(-1, keepdim=True)


def guided_kl(records, enum_dims, site, guide_fn, group):
    """``log q(site | x) - log p(site)`` at the guide's sample, for the whole site (``group="site"``; enumerated
    parents summed out), per dimension (``"dim"``) or per ``group`` dimensions."""
    msg = records[site]
    q, p, value = guide_fn, msg["fn"], msg["value"]
    if group == "site":
        log_p = site_log_prob(msg)
        if any(_depends_on(log_p, d) for d in enum_dims.values()):
            # sum out the enumerated parents: log p(z | continuous parents)
            log_p = log_p + sum(site_log_prob(records[name]) for name in enum_dims)
            log_p = _logsumexp_dims(log_p, enum_dims.values())
        return (q.log_prob(value) - log_p)[..., None]
    if not (hasattr(q, "base_dist") and hasattr(p, "base_dist")):
        raise ConfigError(f"per-dimension free bits need factorised (Independent) distributions at "
                          f"site {site!r} in the model and the guide; use group='site'")
    kl = q.base_dist.log_prob(value) - p.base_dist.log_prob(value)
    if any(_depends_on(kl, d - 1) for d in enum_dims.values()):
        raise ConfigError(f"site {site!r} has enumerated parents, so its KL does not factorise over "
                          "dimensions; use group='site'")
    size = 1 if group == "dim" else group
    if kl.shape[-1] % size:
        raise ConfigError(f"free-bits group size {size} does not divide the {kl.shape[-1]} dimensions "
                          f"of site {site!r}")
    return kl.reshape(kl.shape[:-1] + (kl.shape[-1] // size, size)).sum(-1)


def site_kl(records, site, group, trace):
    """The KL of ``site`` (one of ``records``, the model's sample messages) for the constraint, by the kind of
    site: a cluster inferred by the guide, an enumerated site, or a continuous site of the guide."""
    if site not in records:
        raise ConfigError(f"free-bits site {site!r} is not a sample site of the model; "
                          f"its sites are: {', '.join(sorted(records)) or 'none'}")
    msg = records[site]
    enum_dims = {name: m["infer"]["_enumerate_dim"] for name, m in records.items() if "_enumerate_dim" in m["infer"]}
    guide_site = trace.nodes[site] if trace is not None and site in trace.nodes else None
    if guide_site is not None and _is_categorical(guide_site["fn"]) and _is_categorical(msg["fn"]):
        # a cluster inferred by the guide (cluster_inference other than exact): KL(q(c | x) || p(c))
        if group != "site":
            raise ConfigError("free-bits group must be 'site' for a cluster site")
        return categorical_kl(records, enum_dims, site, guide_site["fn"], set(trace.nodes))
    if site in enum_dims:
        if group != "site":
            raise ConfigError("free-bits group must be 'site' for an enumerated site")
        return enumerated_kl(records, enum_dims, site)
    if guide_site is not None and not msg["is_observed"]:
        return guided_kl(records, enum_dims, site, guide_site["fn"], group)
    if msg["infer"].get("enumerate") == "parallel":
        raise ConfigError(f"free-bits site {site!r} is marked for enumeration but was not enumerated; "
                          "train with TraceEnum_ELBO (or JitTraceEnum_ELBO)")
    raise ConfigError(f"free-bits site {site!r} is neither enumerated nor supplied by the guide; "
                      "choose the cluster site or a latent site of the guide")


def batch_mean(kl, msg, reduce=None):
    """``(mean KL over the data, N)``: ``kl`` (the site's batch dims, enumeration dims reduced to size 1, and a
    trailing group dim) averaged over the site's plates but the particles', ``N`` their total size; ``reduce``
    replaces the mean over the data plate (a global mean over processes)."""
    num_data = 1
    for frame in msg["cond_indep_stack"]:
        if frame.name == _PARTICLE_PLATE:
            continue
        size = frame.size
        if kl.dim() >= 1 - frame.dim:
            if reduce is not None and frame.name == DATA_PLATE:
                kl, size = reduce(kl.sum(frame.dim - 1, keepdim=True), frame.size)
            else:
                kl = kl.mean(frame.dim - 1, keepdim=True)
        num_data *= size
    return kl, num_data


def penalty(kl, num_data, lam):
    """``-N * sum_groups relu(lam - mean_N KL_group)``, one value per particle (a flat tensor)."""
    return (-num_data * F.relu(lam - kl).sum(-1)).reshape(-1)


def per_particle(value, msg):
    """The flat per-particle ``value`` shaped as a factor of the site of ``msg``: a scalar without vectorized
    particles, else one value per particle along the particle plate's dim."""
    particle = next((f for f in msg["cond_indep_stack"] if f.name == _PARTICLE_PLATE), None)
    if particle is None:
        return value.reshape(())
    return value.expand(particle.size).reshape((particle.size,) + (1,) * (-particle.dim - 1))


class FreeBitsMessenger(Messenger):
    """Adds ``-N * relu(lam - KL_mean)`` for the KL of ``site`` (see the module docstring) as the factor
    ``_free_bits_penalty``, once the model has run (the KL of an enumerated site needs all its factors).

    :param float lam: lambda in nats (>= 0); ``lam=0`` leaves the objective unchanged.
    :param str site: the constrained site, enumerated (default ``"cluster"``) or guided.
    :param group: ``"site"``, ``"dim"`` or an int group size (guided sites only).
    :param reduce: ``(kl_sum, count) -> (mean, total count)`` over the global batch of data-parallel training
        (:func:`pyro_gmvae.inference.distributed.global_mean`); None: the minibatch is the batch.

    After each run, ``kl`` holds the measured minibatch-mean KL and ``correction`` the amount the
    constraint added to the loss (both detached, means over particles): the handler's only outputs.
    """

    def __init__(self, lam, site=CLUSTER, group="site", reduce=None):
        if not isinstance(lam, (int, float)) or isinstance(lam, bool):
            raise ConfigError(f"free-bits lam must be a number of nats, got {lam!r}")
        if lam < 0:
            raise ConfigError(f"free-bits lam must be >= 0 nats, got {lam!r}; use 0 to disable the constraint")
        if not (group in ("site", "dim") or (isinstance(group, int) and not isinstance(group, bool) and group >= 1)):
            raise ConfigError(f"free-bits group must be 'site', 'dim' or a positive int, got {group!r}")
        if not isinstance(site, str) or not site:
            raise ConfigError(f"the site to constrain must be a sample site's name, got {site!r}")
        if reduce is not None and not callable(reduce):
            raise ConfigError(f"free-bits reduce must be a function (kl_sum, count) -> (mean, count), got {reduce!r}")
        super().__init__()
        self.lam = float(lam)
        self.site = site
        self.group = group
        self.reduce = reduce
        self.kl = None
        self.correction = None
        self._records = {}

    def __enter__(self):
        self._records = {}
        return super().__enter__()

    def _postprocess_message(self, msg):
        if msg["type"] == "sample" and msg["name"] != PENALTY_SITE and not site_is_subsample(msg):
            self._records[msg["name"]] = msg

    def __exit__(self, exc_type, exc_value, traceback):
        records, self._records = self._records, {}
        try:
            if exc_type is None:
                kl = site_kl(records, self.site, self.group, guide_trace())
                kl, num_data = batch_mean(kl, records[self.site], self.reduce)
                value = penalty(kl, num_data, self.lam)
                self.kl = kl.detach().sum(-1).mean()
                self.correction = -value.detach().mean()  # nats the constraint adds to the loss
                pyro.factor(PENALTY_SITE, per_particle(value, records[self.site]))
        finally:
            super().__exit__(exc_type, exc_value, traceback)


def free_bits(fn=None, lam=0.0, site=CLUSTER, group="site", reduce=None):
    """The free-bits constraint on ``site`` of ``fn`` (see :class:`FreeBitsMessenger`).

    Usable as a wrapper (``free_bits(model, lam=0.5)``), a decorator (``@free_bits(lam=0.5)``) or a context
    manager (``with free_bits(lam=0.5):``).
    """
    msngr = FreeBitsMessenger(lam, site, group, reduce)
    return msngr if fn is None else functools.update_wrapper(msngr(fn), fn, updated=())
