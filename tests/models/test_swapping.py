"""Every registered prior x guide builds, takes an SVI step and gives a finite loss."""

import math

import pytest
import torch
from pyro.infer import SVI
from pyro.optim import Adam

from helpers import BATCH, DATA_DIM, LATENT_DIM, NOISE_DIM, NUM_CLUSTERS
from pyro_gmvae import GUIDES, MODELS, PRIORS, ConfigError, ModelConfig, build, make_elbo


@pytest.mark.parametrize("guide", sorted(GUIDES))
@pytest.mark.parametrize("prior", sorted(PRIORS))
@pytest.mark.parametrize("num_particles", [1, 2])
def test_every_prior_and_guide_trains(prior, guide, num_particles):
    families = getattr(PRIORS[prior], "guide_families", None)
    if families is not None and guide not in families:  # a declared misfit is refused, in one line, up front
        with pytest.raises(ConfigError, match=f"the prior {prior!r} works with the guides"):
            ModelConfig(model="vade", prior=prior, guide=guide, data_dim=DATA_DIM, network="toy")
        return
    config = ModelConfig(model="vade", prior=prior, guide=guide, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                         latent_dim=LATENT_DIM, noise_dim=NOISE_DIM, network="toy")
    model, guide_fn = build(config)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    svi = SVI(model, guide_fn, Adam({"lr": 1e-2}), make_elbo(num_particles))
    loss = svi.step(torch.rand(BATCH, DATA_DIM))
    assert math.isfinite(loss)
    changed = [k for k, v in model.state_dict().items() if not torch.equal(v, before[k])]
    assert changed, "an SVI step changed no model parameter"


EXPECTED_PRIOR = {"vade": "MixturePrior", "gmvae": "ConditionalMixturePrior", "vae": "StandardNormalPrior",
                  "hierarchical": "HierarchicalMixturePrior", "vamp": "VampPrior"}
EXPECTED_GUIDE_SITES = {"vade": {"z"}, "gmvae": {"z", "w"}, "vae": {"z"}, "hierarchical": {"z"}, "vamp": {"z"}}


def test_every_model_is_checked_here():
    assert set(MODELS) == set(EXPECTED_PRIOR)


@pytest.mark.parametrize("name", sorted(MODELS))
def test_every_model_builds_with_its_own_prior(name):
    model, guide = build(ModelConfig(model=name, data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS,
                                     latent_dim=LATENT_DIM, network="toy"))
    assert type(model.prior).__name__ == EXPECTED_PRIOR[name]
    assert set(guide.sites) == EXPECTED_GUIDE_SITES[name]


def test_swapping_the_prior_is_one_argument():
    vade, _ = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM, network="toy"))
    swapped, guide = build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=LATENT_DIM,
                                       network="toy", prior="conditional-mixture"))
    assert type(vade.prior).__name__ == "MixturePrior"
    assert type(swapped.prior).__name__ == "ConditionalMixturePrior"
    assert set(guide.sites) == {"z", "w"}


def test_a_guide_that_does_not_fit_the_prior_is_refused():
    with pytest.raises(ConfigError, match="lowrank guide needs latent sites of at least 2 dimensions"):
        build(ModelConfig(data_dim=DATA_DIM, num_clusters=NUM_CLUSTERS, latent_dim=1, network="toy",
                          guide="lowrank"))


@pytest.mark.parametrize("field,value,message", [
    ("prior", "gamma", "unknown prior 'gamma'; choose one of: "),
    ("guide", "flow", "unknown guide 'flow'; choose one of: diagonal, iaf, lowrank"),
    ("model", "dec", "unknown model 'dec'; choose one of: "),
])
def test_unknown_names_list_the_valid_ones(field, value, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**{field: value})
