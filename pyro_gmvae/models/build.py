"""One build path: ``build(config)`` makes the decoder, the prior and the guide, and hands each component
what it declares it needs.

A prior declares its needs by naming them in its constructor. Every prior receives the sizes of the
:class:`~pyro_gmvae.config.ModelConfig` (``latent_dim``, ``num_clusters``, ``noise_dim``, ``hidden_dim``,
``num_super_clusters``); a prior that names any of these *provisions* receives it too:

- ``data_dim``, ``likelihood``: the data's dimension and the decoder's observation likelihood;
- ``num_pseudo_inputs``: ``ModelConfig.num_pseudo_inputs`` (``--num-pseudo-inputs``);
- ``guide``: the model's own guide, as a :class:`GuideLink` (a prior that sees the encoder, such as the
  VampPrior's ``q(z | u_k)``);
- ``encoder``: the guide's encoder trunk (an ``nn.Module`` mapping ``(..., data_dim)`` to features).

The guide is built from the prior's sites, so a prior cannot hold the guide itself when it is made: it holds a
:class:`GuideLink`, which ``build`` points at the guide before returning. The link is not a module, so the
guide's parameters belong to the guide alone: listed once by ``model.parameters() + guide.parameters()``,
stored once in the checkpoint, updated once per step, under the guide's names in Pyro's param store.

>>> from pyro_gmvae import ModelConfig
>>> model, guide = build(ModelConfig(prior="vamp", data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
>>> model.prior.guide() is guide, len({id(p) for p in [*model.parameters(), *guide.parameters()]})
(True, 11)
"""

import inspect

from ..config import ModelConfig
from ..errors import ConfigError
from ..inference.cluster_inference import build_guide
from ..nn import build_decoder_net, build_encoder_net
from .decoders import Decoder
from .model import ClusterModel
from .priors import PRIORS

#: What every prior receives, as before the build path knew declared needs (plugins may rely on it).
SIZES = ("latent_dim", "num_clusters", "noise_dim", "hidden_dim", "num_super_clusters")
#: What a prior may ask for by naming it in its constructor.
PROVISIONS = ("data_dim", "likelihood", "num_pseudo_inputs", "guide", "encoder")


class GuideLink:
    """The model's guide, for a prior that needs it (:func:`build` links it once the guide exists).

    Calling the link returns the guide; attributes are the guide's (``link.site_dists(x)``). It is not an
    ``nn.Module``: the guide's parameters are not the prior's, so nothing is registered twice."""

    def __init__(self):
        self._guide = None

    def link(self, guide):
        self._guide = guide

    def __call__(self):
        if self._guide is None:
            raise ConfigError("the prior asked for its guide before build() made it; use the guide in the "
                              "prior's forward (or a method forward calls), not in its __init__")
        return self._guide

    def __getattr__(self, name):
        if name.startswith("__"):  # copy and pickle probe special names: the link has none of the guide's
            raise AttributeError(name)
        return getattr(self(), name)

    def __getstate__(self):  # a pickled model (deepcopy, the estimator) keeps no second copy of the guide
        return {"_guide": None}


def needs(cls):
    """The provisions that ``cls``'s constructor names (:data:`PROVISIONS`)."""
    try:
        parameters = inspect.signature(cls).parameters
    except (TypeError, ValueError):  # a builtin or C callable: it names none
        return ()
    return tuple(name for name in PROVISIONS if name in parameters)


def build_prior(config, **provided):
    """The prior of ``config``, given the sizes and the provisions it names (``provided``: what the caller
    has of :data:`PROVISIONS`; a named provision the caller lacks is refused in one line)."""
    prior_cls = PRIORS[config.prior_name]
    options = {"fixed_weights": True} if config.fixed_weights else {}  # ModelConfig checked the prior takes it
    available = {"data_dim": config.data_dim, "likelihood": config.likelihood,
                 "num_pseudo_inputs": config.num_pseudo_inputs, **provided}
    missing = [name for name in needs(prior_cls) if name not in available]
    if missing:
        raise ConfigError(f"the prior {config.prior_name!r} needs {missing}, which build_prior was not given; "
                          "build the model with pyro_gmvae.build(config), which supplies them")
    return prior_cls(latent_dim=config.latent_dim, num_clusters=config.num_clusters,
                     noise_dim=config.noise_dim, hidden_dim=config.prior_hidden_dim,
                     num_super_clusters=config.num_super_clusters, **options,
                     **{name: available[name] for name in needs(prior_cls)})


def build(config):
    """``(model, guide)`` for a :class:`~pyro_gmvae.config.ModelConfig`, on the CPU in the default dtype.
    Each component receives what it declares it needs (see the module docstring)."""
    if not isinstance(config, ModelConfig):
        raise ConfigError(f"build takes a ModelConfig, got {type(config).__name__} {config!r}; pass "
                          f"build(ModelConfig(model=..., data_dim=..., num_clusters=...))")
    encoder = build_encoder_net(config.network, config.data_dim)
    link = GuideLink()
    prior = build_prior(config, guide=link, encoder=encoder)
    decoder = Decoder(build_decoder_net(config.network, config.latent_dim, config.data_dim),
                      config.data_dim, config.likelihood)
    model = ClusterModel(prior, decoder)
    # exact: the plain amortized guide; the other cluster inference strategies add q(c | x)
    guide = build_guide(config, prior, encoder)
    link.link(guide)
    return model, guide
