"""Site and plate names shared by every model, guide and handler.

Names are API: effect handlers (``free_bits``), traces and evaluation select sites by
these strings, so they are defined once here.
"""

#: The plate over datapoints.
DATA_PLATE = "data"
#: The enumerated cluster assignment (VaDE's ``c``, GMVAE's ``z``).
CLUSTER = "cluster"
#: The continuous latent that the decoder reads (VaDE's ``z``, GMVAE's ``x``).
LATENT = "z"
#: GMVAE's "noise" latent that parameterises the mixture (GMVAE's ``w``).
NOISE = "w"
#: The observation (VaDE's ``x``, GMVAE's ``y``).
OBS = "x"
#: The top level of a hierarchical mixture (super-cluster).
SUPER_CLUSTER = "super_cluster"
