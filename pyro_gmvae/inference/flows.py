r"""A normalizing-flow guide head: inverse autoregressive flows conditioned on the encoder (Kingma et al. 2016,
"Improved variational inference with inverse autoregressive flow"), on Pyro's transforms.

For one site of ``dim`` dimensions and the encoder's features ``h``::

    e ~ Normal(loc(h), scale(h))                       (the diagonal head's distribution)
    z = f_L(... f_1(e; h) ...; h)                      (L = flow_layers)
    f_l(e; h) = sigma_l * e + (1 - sigma_l) * m_l      (Pyro's ConditionalAffineAutoregressive, stable=True)

each ``(m_l, sigma_l)`` an autoregressive network of ``e`` and the context ``h`` (a MADE with two hidden layers of
``max(2 * dim, 32)`` units, in the natural order for even layers and the reversed one for odd layers), so that
``log q(z | x)`` stays exact: the base density minus the flows' log-determinants.

``q(z | x)`` has no mean or standard deviation in closed form; :class:`FlowNormal` gives both as Monte-Carlo
estimates over :data:`MOMENT_DRAWS` fixed standard-normal draws (the same draws at every call, so they are
deterministic and leave the global random state alone). That is what the estimators read: ``is`` fits its
per-datapoint proposal from them, AIS scales its chains by them, responsibilities and codes use the mean.

``--guide iaf --flow-layers N`` (``ModelConfig(guide="iaf", flow_layers=N)``).

>>> import torch
>>> head = IAFHead(in_dim=4, dim=3, flow_layers=2)
>>> q = head(torch.randn(5, 4))
>>> q.rsample().shape, q.log_prob(q.rsample()).shape, q.mean.shape
(torch.Size([5, 3]), torch.Size([5]), torch.Size([5, 3]))
"""

import functools
import warnings

import pyro.distributions as dist
import torch
from pyro.distributions.transforms import ConditionalAffineAutoregressive
from pyro.nn import ConditionalAutoRegressiveNN
from torch import nn

from ..config import MAX_FLOW_LAYERS
from ..errors import check_positive
from ..models.priors import positive
from ..registry import GUIDES

#: Draws behind the Monte-Carlo mean and standard deviation of a flow's distribution.
MOMENT_DRAWS = 64
#: The seed of those draws (fixed: the moments are deterministic).
MOMENT_SEED = 20161215


class FlowNormal(dist.TransformedDistribution):
    """A Normal pushed through conditioned flows, with Monte-Carlo ``mean`` and ``stddev`` (module docstring)."""

    @functools.cached_property
    def _moment_draws(self):  # once per distribution: mean and stddev read the same draws
        base = self.base_dist
        generator = torch.Generator(device="cpu").manual_seed(MOMENT_SEED)
        shape = (MOMENT_DRAWS,) + tuple(base.batch_shape) + tuple(base.event_shape)
        eps = torch.randn(shape, generator=generator, dtype=base.mean.dtype).to(base.mean.device)
        z = base.mean + base.stddev * eps
        for t in self.transforms:
            z = t(z)
        return z

    def log_prob(self, value):
        # a mixture of flows (q(z | x) = sum_c q(c | x) q(z | x, c): the amortized and relaxed cluster inferences)
        # scores one value under every component; Pyro's autoregressive networks do not broadcast it: expand it
        shape = torch.broadcast_shapes(value.shape, self.batch_shape + self.event_shape)
        return super().log_prob(value if value.shape == shape else value.expand(shape))

    @property
    def mean(self):
        return self._moment_draws.mean(0)

    @property
    def stddev(self):
        return self._moment_draws.std(0)

    @property
    def variance(self):
        return self.stddev ** 2


class _MaskedShape(nn.Linear):
    """A masked linear layer's weight, bias and mask (shapes only: on the meta device)."""

    def __init__(self, in_features, out_features):
        super().__init__(in_features, out_features)
        self.register_buffer("mask", torch.empty(out_features, in_features))


class _FlowShape(nn.Module):
    """The tensors of one flow of :class:`IAFHead`, by name and shape, for the meta device, where the memory checks
    build models (allocating nothing) and Pyro's constructor cannot run (it reads values)."""

    def __init__(self, dim, context_dim, hidden):
        super().__init__()
        sizes = [dim + context_dim, *hidden, 2 * dim]
        self.nn = nn.Module()
        self.nn.register_buffer("permutation", torch.empty(dim, dtype=torch.long))
        self.nn.layers = nn.ModuleList(_MaskedShape(a, b) for a, b in zip(sizes, sizes[1:]))


class IAFHead(nn.Module):
    """``q(z | x)``: a diagonal Normal of the features, then ``flow_layers`` inverse autoregressive flows
    conditioned on them (module docstring)."""

    #: Pyro's autoregressive networks are not proven under JIT here: train eagerly
    jit_safe = False

    def __init__(self, in_dim, dim, flow_layers=2):
        super().__init__()
        check_positive("flow_layers", flow_layers, integer=True, maximum=MAX_FLOW_LAYERS)
        self.loc = nn.Linear(in_dim, dim)
        self.scale_raw = nn.Linear(in_dim, dim)
        hidden = [max(2 * dim, 32)] * 2
        if torch.get_default_device().type == "meta":  # a memory check: the tensors' shapes, nothing allocated
            self.flows = nn.ModuleList(_FlowShape(dim, in_dim, hidden) for _ in range(flow_layers))
            return
        order = torch.arange(dim)
        with warnings.catch_warnings():
            # one dimension: each flow is an affine map of the context, as Pyro warns; right, if no richer
            warnings.filterwarnings("ignore", "ConditionalAutoRegressiveNN input_dim = 1", UserWarning)
            self.flows = nn.ModuleList(
                ConditionalAffineAutoregressive(
                    ConditionalAutoRegressiveNN(dim, in_dim, hidden, permutation=order.flip(0) if i % 2 else order),
                    stable=True)
                for i in range(flow_layers))

    def forward(self, h):
        base = dist.Normal(self.loc(h), positive(self.scale_raw(h))).to_event(1)
        return FlowNormal(base, [flow.condition(h) for flow in self.flows])


GUIDES.builtin("iaf", IAFHead)
