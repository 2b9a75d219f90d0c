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

import torch
import torch.nn.functional as F

import pyro
import pyro.distributions as dist
from pyro.poutine.handlers import _make_handler
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


class FreeBitsMessenger(Messenger):
    """Adds ``-N * relu(lam - KL_mean)`` for the KL of ``site`` (see the module docstring).

    :param float lam: lambda in nats (>= 0); ``lam=0`` leaves the objective unchanged.
    :param str site: the constrained site, enumerated (default ``"cluster"``) or guided.
    :param group: ``"site"``, ``"dim"`` or an int group size (guided sites only).

    After each run, ``kl`` holds the measured minibatch-mean KL and ``correction`` the amount the
    constraint added to the loss (both detached, means over particles).
    """

    def __init__(self, lam, site=CLUSTER, group="site"):
        if not isinstance(lam, (int, float)) or isinstance(lam, bool):
            raise ConfigError(f"free-bits lam must be a number of nats, got {lam!r}")
        if lam < 0:
            raise ConfigError(f"free-bits lam must be >= 0 nats, got {lam!r}; use 0 to disable the constraint")
        if not (group in ("site", "dim") or (isinstance(group, int) and not isinstance(group, bool) and group >= 1)):
            raise ConfigError(f"free-bits group must be 'site', 'dim' or a positive int, got {group!r}")
        super().__init__()
        self.lam = float(lam)
        self.site = site
        self.group = group
        self.kl = None
        self.correction = None
        #: ``(kl_sum, count) -> (mean, total count)`` over the global batch of data-parallel training
        #: (:func:`pyro_gmvae.inference.distributed.global_mean`); None: the minibatch is the batch.
        self.reduce = None

    def __enter__(self):
        self._records = {}
        return super().__enter__()

    def _postprocess_message(self, msg):
        if msg["type"] == "sample" and msg["name"] != PENALTY_SITE and not site_is_subsample(msg):
            self._records[msg["name"]] = msg

    def __exit__(self, exc_type, exc_value, traceback):
        try:
            if exc_type is None:
                penalty = self._penalty()
                if penalty is not None:
                    pyro.factor(PENALTY_SITE, penalty)
        finally:
            self._records = {}
            super().__exit__(exc_type, exc_value, traceback)

    # -- the KL ------------------------------------------------------------------------------
    @staticmethod
    def _log_prob(msg):
        lp = msg["fn"].log_prob(msg["value"])
        if msg["mask"] is not None and msg["mask"] is not True:
            lp = lp.masked_fill(~msg["mask"], 0.0)
        scale = msg["scale"]
        return lp if isinstance(scale, (int, float)) and scale == 1.0 else lp * scale

    def _guide_site(self, name):
        for frame in reversed(_PYRO_STACK):
            if isinstance(frame, ReplayMessenger) and frame.trace is not None and name in frame.trace.nodes:
                return frame.trace.nodes[name]
        return None

    def _penalty(self):
        if self.site not in self._records:
            raise ConfigError(f"free-bits site {self.site!r} is not a sample site of the model; "
                              f"its sites are: {', '.join(sorted(self._records)) or 'none'}")
        msg = self._records[self.site]
        enum_dims = {name: m["infer"]["_enumerate_dim"] for name, m in self._records.items()
                     if "_enumerate_dim" in m["infer"]}
        guide_site = self._guide_site(self.site)
        if guide_site is not None and _is_categorical(guide_site["fn"]) and _is_categorical(msg["fn"]):
            # a cluster inferred by the guide (cluster_inference other than exact): KL(q(c | x) || p(c))
            if self.group != "site":
                raise ConfigError("free-bits group must be 'site' for a cluster site")
            kl = self._categorical_kl(msg, guide_site, enum_dims)
        elif self.site in enum_dims:
            if self.group != "site":
                raise ConfigError("free-bits group must be 'site' for an enumerated site")
            kl = self._cluster_kl(enum_dims)
        elif guide_site is not None and not msg["is_observed"]:
            kl = self._guided_kl(msg, guide_site, enum_dims)
        elif msg["infer"].get("enumerate") == "parallel":
            raise ConfigError(f"free-bits site {self.site!r} is marked for enumeration but was not enumerated; "
                              "train with TraceEnum_ELBO (or JitTraceEnum_ELBO)")
        else:
            raise ConfigError(f"free-bits site {self.site!r} is neither enumerated nor supplied by the guide; "
                              "choose the cluster site or a latent site of the guide")
        return self._correction(kl, msg)

    def _cluster_kl(self, enum_dims):
        target = enum_dims[self.site]
        others = [d for d in enum_dims.values() if d != target]
        all_dims = list(enum_dims.values())
        # Only enumerated sites and sites whose distribution is batched along an enumeration dim can
        # depend on the clusters; the others (the decoder's x, GMVAE's w) are skipped, not recomputed.
        factors = {name: self._log_prob(m) for name, m in self._records.items()
                   if name in enum_dims or any(_batched_along(m["fn"], d) for d in all_dims)}
        joint = sum(f for f in factors.values() if any(_depends_on(f, d) for d in all_dims))
        prior = sum(factors[name] for name in enum_dims)
        log_post = joint - _logsumexp_dims(joint, all_dims)
        log_post = _logsumexp_dims(log_post, others)
        log_prior = _logsumexp_dims(prior - _logsumexp_dims(prior, all_dims), others)
        return (log_post.exp() * (log_post - log_prior)).sum(target, keepdim=True)[..., None]

    def _categorical_kl(self, msg, guide_site, enum_dims):
        """``KL(q(c | x) || p(c))`` in closed form from the logits of guide and model (their relaxed
        counterparts have the same logits); enumerated parents of ``c`` in the model are summed out."""
        log_q = guide_site["fn"].logits.log_softmax(-1)
        log_p = msg["fn"].logits.log_softmax(-1)
        parents = [name for name in enum_dims if name != self.site and name not in self._guide_names()]
        if parents:  # log p(c) = log sum_parents p(parents) p(c | parents), every c on the last dim
            log_p = log_p + sum(self._log_prob(self._records[name]) for name in parents)[..., None]
            log_p = _logsumexp_dims(log_p, [enum_dims[name] - 1 for name in parents])
        return (log_q.exp() * (log_q - log_p)).sum(-1, keepdim=True)

    def _guide_names(self):
        for frame in reversed(_PYRO_STACK):
            if isinstance(frame, ReplayMessenger) and frame.trace is not None:
                return set(frame.trace.nodes)
        return set()

    def _guided_kl(self, msg, guide_site, enum_dims):
        q, p, value = guide_site["fn"], msg["fn"], msg["value"]
        if self.group == "site":
            log_p = self._log_prob(msg)
            if any(_depends_on(log_p, d) for d in enum_dims.values()):
                # sum out the enumerated parents: log p(z | continuous parents)
                log_p = log_p + sum(self._log_prob(self._records[name]) for name in enum_dims)
                log_p = _logsumexp_dims(log_p, enum_dims.values())
            return (q.log_prob(value) - log_p)[..., None]
        if not (hasattr(q, "base_dist") and hasattr(p, "base_dist")):
            raise ConfigError(f"per-dimension free bits need factorised (Independent) distributions at "
                              f"site {self.site!r} in the model and the guide; use group='site'")
        kl = q.base_dist.log_prob(value) - p.base_dist.log_prob(value)
        if any(_depends_on(kl, d - 1) for d in enum_dims.values()):
            raise ConfigError(f"site {self.site!r} has enumerated parents, so its KL does not factorise over "
                              "dimensions; use group='site'")
        size = 1 if self.group == "dim" else self.group
        if kl.shape[-1] % size:
            raise ConfigError(f"free-bits group size {size} does not divide the {kl.shape[-1]} dimensions "
                              f"of site {self.site!r}")
        return kl.reshape(kl.shape[:-1] + (kl.shape[-1] // size, size)).sum(-1)

    def _correction(self, kl, msg):
        """``-N * sum_groups relu(lam - mean_N KL_group)``, one value per particle.

        ``kl`` has the site's batch dims (enumeration dims reduced to size 1) and a trailing group dim.
        """
        num_data, particle = 1, None
        for frame in msg["cond_indep_stack"]:
            if frame.name == _PARTICLE_PLATE:
                particle = frame
                continue
            size = frame.size
            if kl.dim() >= 1 - frame.dim:
                if self.reduce is not None and frame.name == DATA_PLATE:
                    kl, size = self.reduce(kl.sum(frame.dim - 1, keepdim=True), frame.size)
                else:
                    kl = kl.mean(frame.dim - 1, keepdim=True)
            num_data *= size
        self.kl = kl.detach().sum(-1).mean()
        penalty = (-num_data * F.relu(self.lam - kl).sum(-1)).reshape(-1)
        self.correction = -penalty.detach().mean()  # nats the constraint adds to the loss (mean over particles)
        if particle is None:
            return penalty.reshape(())
        return penalty.expand(particle.size).reshape((particle.size,) + (1,) * (-particle.dim - 1))


@_make_handler(FreeBitsMessenger)
def free_bits(fn=None, lam=0.0, site=CLUSTER, group="site"):
    """Convenient wrapper of :class:`FreeBitsMessenger`: ``free_bits(model, lam=0.5)``, as a decorator,
    or as a context manager."""
    ...
