"""The training objective: Pyro's ``TraceEnum_ELBO``, enumerated clusters summed out exactly."""

from pyro.infer import JitTraceEnum_ELBO, TraceEnum_ELBO

#: The models use one plate (data); vectorized particles add one more to the left.
MAX_PLATE_NESTING = 1


def make_elbo(num_particles=1, jit=False, max_plate_nesting=MAX_PLATE_NESTING):
    """``TraceEnum_ELBO`` (or ``JitTraceEnum_ELBO``) with ``num_particles`` vectorized particles
    (GMVAE's M Monte Carlo samples)."""
    cls = JitTraceEnum_ELBO if jit else TraceEnum_ELBO
    kwargs = {"ignore_jit_warnings": True} if jit else {}
    return cls(max_plate_nesting=max_plate_nesting, num_particles=num_particles,
               vectorize_particles=num_particles > 1, strict_enumeration_warning=False, **kwargs)


#: Packages whose modules are proven under JIT (``tests/inference/test_jit.py``: the traced loss equals the eager
#: loss on the same random numbers); a module can opt out with ``jit_safe = False``.
JIT_PROVEN_PACKAGES = ("pyro_gmvae", "pyro", "torch")


def use_jit(config, model, guide, *, distributed=False, strategy="exact"):
    """Whether training traces the loss (``JitTraceEnum_ELBO``): ``config.jit`` when it is True or False; the
    default (None) traces where that is known to be safe: one process, no free bits (their KL is then
    reported from every step), the enumerated ELBO without a KL warm-up (its beta changes at every step), float32
    networks, the exact enumerated strategy, and every module of
    ``model`` and ``guide`` from this library, Pyro or PyTorch (a plugin's own module trains eagerly).

    >>> from pyro_gmvae import ModelConfig, TrainConfig, build
    >>> model, guide = build(ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy"))
    >>> use_jit(TrainConfig(), model, guide), use_jit(TrainConfig(free_bits=0.5), model, guide)
    (True, False)
    """
    if config.jit is not None:
        return config.jit
    return (not distributed and config.free_bits == 0 and config.compute_dtype == "float32"
            and config.objective == "elbo" and config.kl_warmup_epochs == 0
            and strategy == "exact" and all(_jit_proven(m) for m in (*model.modules(), *guide.modules())))


def _jit_proven(module):
    return type(module).__module__.split(".")[0] in JIT_PROVEN_PACKAGES and getattr(module, "jit_safe", True)
