import pyro
import pytest
import torch


@pytest.fixture(autouse=True)
def _fresh_pyro():
    """Seed, clear the param store and validate distributions in every test."""
    pyro.clear_param_store()
    pyro.set_rng_seed(0)
    pyro.enable_validation(True)
    yield
    pyro.clear_param_store()


@pytest.fixture
def float64():
    old = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    yield
    torch.set_default_dtype(old)


@pytest.fixture(autouse=True)
def _plugin_state():
    """A test that imports a plugin (or trusts plugins) leaves no trace: later runs would record its module in
    config.json, and a fresh process refuses a recorded module it was not told to trust."""
    from pyro_gmvae import plugins

    imported, trust = list(plugins._imported), plugins._trust_all
    yield
    plugins._imported[:] = imported
    plugins.trust_plugins(trust)
