"""A hostile pass over the surfaces of issue 31 (issue 34's "Done when"): the VampPrior, the IAF guide, the
importance-weighted objective and KL warm-up, ``compare`` and the plugin refusal. Each case here was a traceback,
a wasted allocation or a misleading line before; bad input now gets one line and changes nothing on disk."""

import dataclasses
import json
import warnings

import numpy as np
import pytest
import torch

from pyro_gmvae import ModelConfig, build, cli, memory, plugins, runs
from pyro_gmvae.errors import ConfigError
from pyro_gmvae.evaluation.refined import _tril_of_inverse
from pyro_gmvae.inference.flows import IAFHead
from pyro_gmvae.plugins import check_recorded_plugins
from cli_cases import TINY, assert_refused, copy_run, good_run, on_run, snapshot, train  # noqa: F401

GIB = 2 ** 30


@pytest.fixture(scope="module", autouse=True)
def _no_plugins():
    """Runs made here record no plugin module that another test file imported (before the good run is made)."""
    imported = list(plugins._imported)
    plugins._imported[:] = []
    yield
    plugins._imported[:] = imported


@pytest.fixture(autouse=True)
def _sixteen_gib(monkeypatch):
    """The memory checks see a 16 GiB machine, whatever this one has."""
    monkeypatch.setattr(memory, "memory_bytes", lambda device: 16 * GIB)


def _edit_config(section, key, value):
    def edit(run):
        path = run / "config.json"
        config = json.loads(path.read_text())
        (config if section is None else config[section])[key] = value
        path.write_text(json.dumps(config))
    return edit


def compare(*args, missing=False):
    """``compare RUN RUN_B ...`` on a copy of the good run; B is the copy, or a folder that does not exist."""
    def build_case(tmp_path, good_run):
        run = copy_run(good_run, tmp_path)
        return ["compare", str(run), str(tmp_path / "missing") if missing else str(run), *args], run
    return build_case


CLI_CASES = {
    # huge sizes: refused before anything is allocated, naming the flag to lower
    "flow-layers-huge": (train("--guide", "iaf", "--flow-layers", "1000000000"), ["--flow-layers", "at most 100"]),
    "flow-layers-101": (train("--guide", "iaf", "--flow-layers", "101"), ["--flow-layers", "at most 100"]),
    "pseudo-inputs-huge": (train("--prior", "vamp", "--num-pseudo-inputs", str(10 ** 9)),
                           ["parameters", "--num-pseudo-inputs"]),
    "pseudo-inputs-step": (train("--prior", "vamp", "--num-pseudo-inputs", str(10 ** 7)),
                           ["a training step", "--num-pseudo-inputs", "--batch-size"]),
    "iwae-particles-huge": (train("--objective", "iwae", "--num-particles", str(10 ** 9)),
                            ["a training step", "particles", "--num-particles"]),
    "elbo-particles-huge": (train("--num-particles", str(10 ** 6)), ["a training step", "--num-particles"]),
    "iaf-particles-huge": (train("--guide", "iaf", "--num-particles", str(10 ** 6)), ["a training step"]),
    "iaf-latent-huge": (train("--guide", "iaf", "--latent-dim", "100000"), ["parameters", "--latent-dim"]),
    # compare: its memory refusal names a flag it has; a missing run is named before the data are read
    "compare-samples-huge": (compare("--split", "all", "--num-samples", str(10 ** 9)),
                             ["--num-samples", "--batch-size"]),
    "compare-batch-size-0": (compare("--split", "all", "--batch-size", "0"), ["--batch-size", "> 0"]),
    "compare-missing-run": (compare(missing=True), ["missing has no config.json"]),
    # plugins recorded in config.json that no run writes: a corrupt file, named as such
    "plugin-not-a-name": (on_run(lambda run: ["evaluate", str(run)], _edit_config(None, "plugins", [5])),
                          ["config.json is corrupt", "plugin 5 is not"]),
    "plugin-not-a-name-trusted": (on_run(lambda run: ["evaluate", str(run), "--trust-plugins"],
                                         _edit_config(None, "plugins", ["a b"])),
                                  ["config.json is corrupt", "'a b'"]),
}


@pytest.mark.parametrize("name", list(CLI_CASES))
def test_cli_bad_input(name, tmp_path, good_run, capsys):
    assert_refused(CLI_CASES[name], tmp_path, good_run, capsys)


def test_a_vamp_prior_may_have_more_pseudo_inputs_than_datapoints(tmp_path, capsys):
    """K > N was refused as "cannot fill K clusters" (and named --num-clusters); the pseudo-inputs start at the
    rows drawn with replacement, so it trains."""
    out = tmp_path / "run"
    assert cli.main(["train", *TINY, "--prior", "vamp", "--num-pseudo-inputs", "250", "--out", str(out)]) == 0
    model, *_ = runs.load_run(out)
    assert model.prior.num_clusters == 250 and bool(model.prior.initialised)


def test_an_edited_config_is_refused_before_its_model_is_allocated(tmp_path, good_run, monkeypatch, capsys):
    """config.json asking for 10**6 clusters (3 GiB: within the 16 GiB the check sees) no longer builds 10**9
    components before the checkpoint's shapes are compared."""
    run = copy_run(good_run, tmp_path, _edit_config("model", "num_clusters", 10 ** 6))

    def no_build(config):
        raise AssertionError("the model was allocated")
    monkeypatch.setattr(runs.train, "build", no_build)
    before = snapshot(run)
    assert cli.main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "written for another model configuration" in err
    assert snapshot(run) == before


def test_a_normal_run_on_data_of_a_million_evaluates(tmp_path, capsys):
    """The Laplace proposal's Cholesky failed on such a run (a traceback from evaluate)."""
    data = tmp_path / "big.npy"
    np.save(data, (np.random.default_rng(0).normal(size=(40, 3)) * 1e6).astype(np.float32))
    out = tmp_path / "run"
    assert cli.main(["train", "--dataset", "file", "--data-path", str(data), "--likelihood", "normal", "--network",
                     "toy", "--num-clusters", "3", "--epochs", "1", "--pretrain-epochs", "0", "--no-progress",
                     "--out", str(out)]) == 0
    assert cli.main(["evaluate", str(out), "--num-samples", "20", "--no-save"]) == 0
    assert "Traceback" not in capsys.readouterr().err


def test_the_laplace_factor_is_the_cholesky_of_the_inverse(float64):
    a = torch.randn(4, 5, 5)
    precision = a @ a.transpose(-1, -2) + 0.1 * torch.eye(5)
    eigvals, eigvecs = torch.linalg.eigh(precision)
    assert torch.allclose(_tril_of_inverse(eigvecs, eigvals), torch.linalg.cholesky(torch.linalg.inv(precision)))


def test_the_laplace_factor_survives_eigenvalues_beyond_float32_precision():
    eigvecs = torch.linalg.qr(torch.randn(2, 3, 3))[0]
    eigvals = torch.tensor([[1e-2, 1e10, 1e20], [1.0, 2.0, 3.0]])
    tril = _tril_of_inverse(eigvecs, eigvals)
    assert torch.isfinite(tril).all() and (tril.diagonal(dim1=-2, dim2=-1) > 0).all()
    assert torch.equal(tril, tril.tril())


def test_an_iaf_head_on_the_meta_device_has_the_real_ones_tensors():
    """The memory checks build models on the meta device, which Pyro's autoregressive networks cannot."""
    config = ModelConfig(guide="iaf", flow_layers=3, data_dim=6, latent_dim=5, num_clusters=4, network="toy")
    with torch.device("meta"):
        _, meta = build(config)
    _, real = build(config)
    assert {k: v.shape for k, v in meta.state_dict().items()} == {k: v.shape for k, v in real.state_dict().items()}


def test_a_one_dimensional_iaf_builds_without_pyros_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        IAFHead(in_dim=4, dim=1, flow_layers=2)


def test_flow_layers_are_bounded_in_python_too():
    with pytest.raises(ConfigError, match="at most 100"):
        IAFHead(in_dim=4, dim=3, flow_layers=10 ** 9)


def test_a_recorded_plugin_is_named_once(tmp_path):
    with pytest.raises(ConfigError) as e:
        check_recorded_plugins(["not_imported_plugin", "not_imported_plugin"], "run/config.json")
    assert str(e.value).count("--import not_imported_plugin") == 1


def test_a_flow_scores_one_value_under_every_component():
    """q(z | x) = sum_c q(c | x) q(z | x, c) scores z under each component's flow: a traceback before."""
    head = IAFHead(in_dim=4, dim=3, flow_layers=2)
    h, z = torch.randn(5, 2, 4), torch.randn(5, 1, 3)
    log_prob = head(h).log_prob(z)
    for k in range(2):
        assert torch.allclose(log_prob[:, k], head(h[:, k]).log_prob(z[:, 0]), atol=1e-5)


@pytest.mark.parametrize("inference", ["amortized", "relaxed"])
def test_an_iaf_guide_trains_with_a_cluster_inference(inference, tmp_path):
    assert cli.main(["train", *TINY, "--guide", "iaf", "--cluster-inference", inference,
                     "--out", str(tmp_path / "run")]) == 0


def test_importance_chunks_shrink_with_the_components():
    """evaluate on a VampPrior of 20,000 pseudo-inputs asked for 6.4 GB in one chunk; up to 10 clusters the
    chunks are as they were."""
    from pyro_gmvae.evaluation.marginal import CHUNK_ELEMENTS, chunk_samples

    small = ModelConfig(data_dim=6, num_clusters=4, latent_dim=5, network="toy")
    vamp = ModelConfig(prior="vamp", num_pseudo_inputs=20000, data_dim=6, latent_dim=5, network="toy")
    with torch.device("meta"):
        (small_model, _), (vamp_model, _) = build(small), build(vamp)
    assert chunk_samples(small_model, 3) == CHUNK_ELEMENTS // 3
    assert chunk_samples(vamp_model, 500) == 1  # at least one sample
    with torch.device("meta"):
        preset_model, _ = build(dataclasses.replace(vamp, num_pseudo_inputs=500))  # vamp-bmnist's K
    assert chunk_samples(preset_model, 500) * 500 * 500 <= CHUNK_ELEMENTS * 10
    assert chunk_samples(vamp_model, 500, chunk_size=7) == 7
