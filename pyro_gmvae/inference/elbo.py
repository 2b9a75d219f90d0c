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
