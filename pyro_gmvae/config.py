"""Frozen configurations: everything needed to rebuild a model and to repeat its training.

``ModelConfig`` rebuilds the networks (it is saved as ``config.json`` beside every checkpoint);
``TrainConfig`` holds the optimisation. Both validate themselves on construction, so a bad value
fails before any data is loaded or any file is written.
"""

import dataclasses
import inspect
import numbers
from dataclasses import dataclass

from .data.binarize import BINARIZE
from .defaults import MODEL_FIELDS, TRAIN_FIELDS, resolve
from .errors import ConfigError, check_choice, check_positive
from .registry import CLUSTER_INFERENCE, GUIDES, INIT_STRATEGIES, LIKELIHOODS, MODELS, NETWORKS, PRETRAIN_RECIPES, \
    PRIORS

#: The largest learning rate accepted (Adam diverges long before).
MAX_LR = 1.0
#: Seeds are those numpy accepts: 0 .. 2**32 - 1.
MAX_SEED = 2 ** 32 - 1
#: The dtypes the networks may compute in (``bfloat16``: under autocast; the ELBO stays float32).
COMPUTE_DTYPES = ("float32", "bfloat16")
#: The training objectives: the enumerated ELBO, or the importance-weighted bound (inference/objective.py).
OBJECTIVES = ("elbo", "iwae")
#: The most flows of a flow guide: each is a network run in sequence at every step (the IAF paper's few, far
#: above); thousands only take hours to build and exhaust memory in the first step.
MAX_FLOW_LAYERS = 100
#: Free bits per site, or per latent dimension.
FREE_BITS_GROUPS = ("site", "dim")


class _AsDict:
    """``to_dict``/``from_dict`` of the config dataclasses (config.json holds their dicts)."""

    def to_dict(self):
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d):
        if not isinstance(d, dict):
            raise ConfigError(f"{cls.__name__}.from_dict takes a dict, got {type(d).__name__}; pass the "
                              "dict that to_dict() returned")
        unknown = set(d) - {f.name for f in dataclasses.fields(cls)}
        if unknown:
            raise ConfigError(f"unknown {cls._kind} config fields {sorted(unknown)}; the config was written by "
                              "another version of pyro_gmvae")
        return cls(**d)


@dataclass(frozen=True)
class ModelConfig(_AsDict):
    """The generative model and its guide.

    ``prior=None`` takes the model's own prior (VaDE: ``mixture``, GMVAE: ``conditional-mixture``,
    VAE: ``standard-normal``); naming another swaps it.
    """

    _kind = "model"  # in from_dict's message (not a field: no annotation)
    model: str = "vade"
    data_dim: int = 64
    num_clusters: int = 10
    latent_dim: int = 10
    noise_dim: int | None = None
    num_super_clusters: int | None = None  # the hierarchical model's top level (None: its default)
    prior_hidden_dim: int = 100
    prior: str | None = None
    guide: str = "diagonal"
    likelihood: str = "bernoulli"
    network: str = "vade"
    fixed_weights: bool = False  # uniform cluster weights, never learned (priors with a fixed_weights option)
    # K of a prior with pseudo-inputs (the VampPrior; None: num_clusters); such a prior's components are them,
    # so num_clusters is set to K
    num_pseudo_inputs: int | None = None
    # flows of a flow guide ("iaf"; None: the head's default, 2)
    flow_layers: int | None = None
    # how training infers the cluster: exact, amortized, relaxed, score-function (inference/cluster_inference.py)
    cluster_inference: str = "exact"

    def __post_init__(self):
        for name in ("model", "guide", "likelihood", "network", "prior", "cluster_inference"):
            value = getattr(self, name)
            if not isinstance(value, str) and not (name == "prior" and value is None):
                raise ConfigError(f"{name} must be a name (a string), got {value!r}; pass e.g. model='vade'")
        MODELS.check(self.model)
        if self.prior is not None:
            PRIORS.check(self.prior)
        GUIDES.check(self.guide)
        check_choice("likelihood", self.likelihood, LIKELIHOODS)
        NETWORKS.check(self.network)
        if self.fixed_weights and "fixed_weights" not in inspect.signature(PRIORS[self.prior_name]).parameters:
            raise ConfigError(f"the prior {self.prior_name!r} has no fixed_weights option; use the 'mixture' "
                              "prior (VaDE's), or drop fixed_weights / --fixed-weights")
        self._check_pseudo_inputs()
        if self.flow_layers is not None:
            if "flow_layers" not in inspect.signature(GUIDES[self.guide]).parameters:
                raise ConfigError(f"flow_layers (--flow-layers) is for a flow guide such as 'iaf', but the guide is "
                                  f"{self.guide!r}; pass guide='iaf' (--guide iaf), or drop flow_layers")
            check_positive("flow_layers", self.flow_layers, integer=True, maximum=MAX_FLOW_LAYERS)
        families = getattr(PRIORS[self.prior_name], "guide_families", None)
        if families is not None and self.guide not in families:
            raise ConfigError(f"the prior {self.prior_name!r} works with the guides {', '.join(families)}, not "
                              f"{self.guide!r}; pass guide={families[0]!r} (--guide {families[0]})")
        CLUSTER_INFERENCE.check(self.cluster_inference)
        allowed = getattr(PRIORS[self.prior_name], "cluster_inferences", None)
        if allowed is not None and self.cluster_inference not in allowed:
            raise ConfigError(f"the prior {self.prior_name!r} trains with cluster inference {' or '.join(allowed)}, "
                              f"not {self.cluster_inference!r}; pass cluster_inference={allowed[0]!r} "
                              f"(--cluster-inference {allowed[0]})")
        CLUSTER_INFERENCE[self.cluster_inference].check_prior(
            self.prior_name, getattr(PRIORS[self.prior_name], "cluster_sites", None))
        for name in ("data_dim", "num_clusters", "latent_dim", "prior_hidden_dim"):
            check_positive(name, getattr(self, name), integer=True)
        if self.noise_dim is not None:
            check_positive("noise_dim", self.noise_dim, integer=True)
        if self.num_super_clusters is not None:
            check_positive("num_super_clusters", self.num_super_clusters, integer=True)

    def _check_pseudo_inputs(self):
        if self.num_pseudo_inputs is None:
            return
        if "num_pseudo_inputs" not in inspect.signature(PRIORS[self.prior_name]).parameters:
            raise ConfigError(f"num_pseudo_inputs (--num-pseudo-inputs) is for a prior with pseudo-inputs such as "
                              f"'vamp', but the prior is {self.prior_name!r}; pass prior='vamp' (--prior vamp), or "
                              "drop num_pseudo_inputs")
        check_positive("num_pseudo_inputs", self.num_pseudo_inputs, integer=True)
        object.__setattr__(self, "num_clusters", self.num_pseudo_inputs)  # the prior's components are them

    @property
    def prior_name(self):
        return self.prior or MODELS[self.model].prior

    @classmethod
    def for_dataset(cls, dataset, preset=None, **overrides):
        """The model the command line would build for ``dataset`` (a :class:`~pyro_gmvae.data.Dataset`
        or a name): :data:`~pyro_gmvae.defaults.DATASET_DEFAULTS`, then ``preset``, then ``overrides``.

        A Dataset also gives ``data_dim``, ``likelihood`` and ``num_clusters`` (its number of classes);
        with a bare name, pass ``data_dim`` unless the dataclass default fits (digits: 64).

        >>> ModelConfig.for_dataset("digits").network
        'vade'
        """
        _check_overrides(cls, overrides)
        name = getattr(dataset, "name", dataset)
        model_kw, _, _ = resolve({**overrides, "dataset": name}, preset)
        extra = {k: v for k, v in overrides.items() if k not in MODEL_FIELDS}
        kw = {**model_kw, **extra}
        if hasattr(dataset, "data_dim"):
            kw.setdefault("data_dim", dataset.data_dim)
            kw.setdefault("likelihood", dataset.likelihood)
            kw.setdefault("num_clusters", dataset.num_classes or 10)
        return cls(**kw)


@dataclass(frozen=True)
class TrainConfig(_AsDict):
    """Optimisation: Adam on ``TraceEnum_ELBO`` with a step decay ``lr * lr_decay ** (epoch // lr_decay_every)``
    floored at ``min_lr`` (VaDE's schedule), optional autoencoder pretraining + GMM initialisation,
    and the free-bits constraint."""

    _kind = "train"

    epochs: int = 100
    batch_size: int = 100
    lr: float = 2e-3
    lr_decay: float = 0.9
    lr_decay_every: int = 10
    min_lr: float = 2e-4
    adam_eps: float = 1e-4
    num_particles: int = 1
    # "elbo" (TraceEnum_ELBO, num_particles averaged) or "iwae" (the importance-weighted bound over num_particles
    # draws, clusters enumerated in each weight): inference/objective.py
    objective: str = "elbo"
    # KL warm-up: beta of the KL term rises linearly from 0 to 1 over this many SVI epochs (0: none)
    kl_warmup_epochs: int = 0
    # None: JitTraceEnum_ELBO where it is known to be safe (inference/elbo.py use_jit), else the eager loss
    jit: bool | None = None
    seed: int = 0
    # None: the model's default through train_run / the CLI (VaDE and the hierarchy pretrain 50 epochs);
    # a bare Trainer(..., pretrain_epochs=0) then uses its own argument
    pretrain_epochs: int | None = None
    pretrain_lr: float = 1e-3
    # the start (inference/pretrain.py): autoencoder recipe, its batch size (None: batch_size), the mixture's
    # initialisation, the q(z|x) scale to start from (None: as initialised), and warm-up epochs with the
    # cluster observed at the initial labels
    pretrain_recipe: str = "likelihood"
    pretrain_batch_size: int | None = None
    init: str = "gmm"
    # the start's optimisation epochs, for a start that takes n_epochs ("umap", "umap-inputs": UMAP's; None: its
    # own, for UMAP 200 for 10k points or more, else 500)
    umap_epochs: int | None = None
    # UMAP's neighbourhood sizes, for a start that takes n_neighbors (None: 20); with several, each start is made
    # and warmed up, and the one whose model has the highest ELBO on the training data is kept (no label read)
    umap_neighbors: tuple[int, ...] | None = None
    init_guide_scale: float | None = None
    init_warmup_epochs: int = 0
    # lambda of the warm-up's -log p(c = start label | latents) (ours; pretrain.warm_up_loss): 0 = the ELBO alone
    init_warmup_label_weight: float = 0.0
    free_bits: float = 0.0
    free_bits_site: str = "cluster"
    free_bits_group: str = "site"
    # the relaxed cluster inference's temperature: max(end, start * exp(-decay * epochs)), per step
    temperature_start: float = 1.0
    temperature_end: float = 0.5
    temperature_decay: float = 0.05
    device: str = "cpu"
    compute_dtype: str = "float32"  # "bfloat16": the networks under autocast (the ELBO stays float32)
    # None, "static" (one fixed Bernoulli draw of the [0, 1] data) or "dynamic" (a fresh draw per epoch; the
    # start and evaluation use the static one): pyro_gmvae/data/binarize.py
    binarize: str | None = None

    def __post_init__(self):
        check_positive("epochs", self.epochs, strict=False, integer=True)
        check_positive("batch_size", self.batch_size, integer=True)
        # rates above 1 only blow Adam up; every float is checked finite (NaN passes any comparison)
        check_positive("lr", self.lr, maximum=MAX_LR)
        check_positive("pretrain_lr", self.pretrain_lr, maximum=MAX_LR)
        check_positive("num_particles", self.num_particles, integer=True)
        self._check_objective()
        check_positive("lr_decay_every", self.lr_decay_every, integer=True)
        check_positive("adam_eps", self.adam_eps, maximum=1.0)
        check_positive("lr_decay", self.lr_decay, maximum=1.0)
        check_positive("min_lr", self.min_lr, strict=False, maximum=MAX_LR)
        if self.pretrain_epochs is not None:
            check_positive("pretrain_epochs", self.pretrain_epochs, strict=False, integer=True)
        if self.pretrain_batch_size is not None:
            check_positive("pretrain_batch_size", self.pretrain_batch_size, integer=True)
        if self.init_guide_scale is not None:
            check_positive("init_guide_scale", self.init_guide_scale, maximum=1e3)
        check_positive("init_warmup_epochs", self.init_warmup_epochs, strict=False, integer=True)
        check_positive("init_warmup_label_weight", self.init_warmup_label_weight, strict=False, maximum=1e3)
        check_choice("pretraining recipe", self.pretrain_recipe, PRETRAIN_RECIPES)
        check_choice("initialisation", self.init, INIT_STRATEGIES)
        if self.umap_epochs is not None:
            check_positive("umap_epochs", self.umap_epochs, integer=True)
            if "n_epochs" not in inspect.signature(INIT_STRATEGIES[self.init]).parameters:
                raise ConfigError(f"umap_epochs (--umap-epochs) sets UMAP's epochs of the umap start, but the start "
                                  f"{self.init!r} takes no n_epochs; pass init='umap' (--init umap), or drop "
                                  "umap_epochs")
        if self.umap_neighbors is not None:
            self._check_umap_neighbors()
        if isinstance(self.free_bits, numbers.Real) and not isinstance(self.free_bits, bool) and self.free_bits < 0:
            raise ConfigError(f"free-bits lambda must be >= 0 nats, got {self.free_bits!r}; use 0 to disable it")
        check_positive("free_bits", self.free_bits, strict=False)
        check_positive("seed", self.seed, strict=False, integer=True, maximum=MAX_SEED)
        check_positive("temperature_start", self.temperature_start, maximum=1e3)
        check_positive("temperature_end", self.temperature_end, maximum=1e3)
        check_positive("temperature_decay", self.temperature_decay, strict=False, maximum=1e3)
        if self.temperature_end > self.temperature_start:
            raise ConfigError(f"temperature_end ({self.temperature_end}) is above temperature_start "
                              f"({self.temperature_start}); the relaxation anneals downwards: pass an end at or "
                              "below the start")
        if self.jit is not None and not isinstance(self.jit, bool):
            raise ConfigError(f"jit must be True, False or None (traced where safe), got {self.jit!r}")
        for name in ("free_bits_site", "device"):
            if not isinstance(getattr(self, name), str):
                raise ConfigError(f"{name} must be a string, got {getattr(self, name)!r}")
        check_choice("free-bits group", self.free_bits_group, FREE_BITS_GROUPS)
        check_choice("compute dtype", self.compute_dtype, COMPUTE_DTYPES)
        if self.binarize is not None:
            check_choice("binarize", self.binarize, BINARIZE)

    def _check_objective(self):
        check_choice("objective", self.objective, OBJECTIVES)
        check_positive("kl_warmup_epochs", self.kl_warmup_epochs, strict=False, integer=True)
        if self.objective == "iwae":
            if self.num_particles < 2:
                raise ConfigError(f"the iwae objective needs several particles (K >= 2), got num_particles="
                                  f"{self.num_particles}; pass e.g. num_particles=5 (--num-particles 5)")
            for name, off in (("free_bits", 0), ("kl_warmup_epochs", 0)):
                if getattr(self, name) != off:
                    raise ConfigError(f"{name} ({getattr(self, name)}) changes the ELBO, not the importance-weighted "
                                      f"bound; with objective='iwae' pass {name}=0 (--{name.replace('_', '-')} 0), "
                                      "or use objective='elbo'")

    def _check_umap_neighbors(self):
        values = self.umap_neighbors
        if isinstance(values, numbers.Integral) and not isinstance(values, bool):
            values = (values,)
        if not isinstance(values, (list, tuple)) or not values or len(set(values)) != len(values):
            raise ConfigError(f"umap_neighbors must be one or more distinct neighbourhood sizes, got "
                              f"{self.umap_neighbors!r}; pass e.g. (10, 20, 30, 50) (--umap-neighbors 10 20 30 50)")
        for value in values:
            check_positive("umap_neighbors", value, integer=True)
            if value < 2:
                raise ConfigError(f"umap_neighbors must be at least 2 (a neighbourhood), got {value}")
        if "n_neighbors" not in inspect.signature(INIT_STRATEGIES[self.init]).parameters:
            raise ConfigError(f"umap_neighbors (--umap-neighbors) sets UMAP's neighbourhood of the umap starts, but "
                              f"the start {self.init!r} takes no n_neighbors; pass init='umap' or 'umap-inputs', or "
                              "drop umap_neighbors")
        object.__setattr__(self, "umap_neighbors", tuple(int(v) for v in values))  # JSON gives a list back

    @classmethod
    def for_dataset(cls, dataset="digits", preset=None, **overrides):
        """The training the command line would run on ``dataset`` (a name or a Dataset):
        :data:`~pyro_gmvae.defaults.DATASET_DEFAULTS`, then ``preset``, then ``overrides``.

        >>> TrainConfig.for_dataset("digits", epochs=5).lr
        0.0001
        """
        _check_overrides(cls, overrides)
        _, train_kw, _ = resolve({**overrides, "dataset": getattr(dataset, "name", dataset)}, preset)
        extra = {k: v for k, v in overrides.items() if k not in TRAIN_FIELDS}  # fields defaults does not list
        return cls(**{**train_kw, **extra})


def _check_overrides(cls, overrides):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise ConfigError(f"{cls.__name__} has no fields {unknown}; choose among {sorted(fields)}")
