"""Issue 31's workbench from the shell and the estimator: an encoder-coupled prior (built in, and one registered
by a plugin) works everywhere a built-in prior does; the objectives train from flags."""

import json

import numpy as np
import pytest

from cli_cases import TINY
from pyro_gmvae import GMVAEClusterer, PRIORS, plugins
from pyro_gmvae.cli import main
from pyro_gmvae.runs import load_run

PLUGIN = '''
from pyro_gmvae import register_prior
from pyro_gmvae.models import VampPrior


class HalfVamp(VampPrior):
    """A VampPrior whose pseudo-inputs are halved: a plugin's own prior that sees the encoder."""

    def inputs(self):
        return 0.5 * super().inputs()


register_prior("test-half-vamp", HalfVamp)
'''


@pytest.mark.parametrize("prior", ["vamp", "test-half-vamp"])
def test_an_encoder_coupled_prior_works_everywhere(prior, tmp_path, monkeypatch, capsys):
    (tmp_path / "test_half_vamp_plugin.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_imported", [])
    saved = PRIORS.snapshot()
    imports = ["--import", "test_half_vamp_plugin"] if prior != "vamp" else []
    run = tmp_path / "run"
    try:
        assert main(["train", *TINY, "--likelihood", "normal", "--prior", prior, "--num-pseudo-inputs", "5",
                     "--kl-warmup-epochs", "2", "--out", str(run), "--threads", "1", *imports]) == 0
        assert main(["train", "--resume", str(run), "--epochs", "2", "--no-progress", *imports]) == 0
        assert json.loads((run / "config.json").read_text())["model"]["num_clusters"] == 5
        assert main(["evaluate", str(run), "--estimator", "is-guide", "--num-samples", "8", *imports]) == 0
        assert np.isfinite(json.loads((run / "eval.json").read_text())["log_likelihood"])
        assert main(["sample", str(run), *imports]) == 0 and (run / "samples.png").exists()
        np.save(tmp_path / "new.npy", np.random.default_rng(0).normal(size=(4, 2)).astype("float32"))
        assert main(["predict", str(run), "--data", str(tmp_path / "new.npy"), "--out", str(tmp_path / "l.csv"),
                     *imports]) == 0
        model, guide, config, _, _ = load_run(run)
        assert model.prior.guide() is guide and config.prior == prior and model.prior.num_clusters == 5
    finally:
        PRIORS.restore(saved)
    err = capsys.readouterr().err
    assert "collapsing" not in err  # pseudo-inputs are not clusters: no collapse warning


def test_the_estimator_takes_the_new_settings(tmp_path):
    x = np.random.default_rng(0).normal(size=(90, 3)).astype("float32")
    est = GMVAEClusterer(prior="vamp", num_pseudo_inputs=4, epochs=2, pretrain_epochs=0, init_warmup_epochs=0,
                         init_warmup_label_weight=0, dataset="file", likelihood="normal", progress=False,
                         network="toy", kl_warmup_epochs=1).fit(x)
    assert est.model_.prior.num_clusters == 4 and est.predict(x).shape == (90,)
    iwae = GMVAEClusterer(num_clusters=3, objective="iwae", num_particles=3, epochs=1, pretrain_epochs=0,
                          init_warmup_epochs=0, init_warmup_label_weight=0, dataset="file", likelihood="normal",
                          progress=False, network="toy").fit(x)
    assert np.isfinite(iwae.history_[-1]["elbo"])
    clone = GMVAEClusterer.load(est.save(tmp_path / "saved"))
    assert clone.model_.prior.guide() is clone.guide_


def test_an_encoder_coupled_prior_trains_data_parallel(tmp_path):
    run = tmp_path / "ddp"
    assert main(["train", *TINY, "--likelihood", "normal", "--prior", "vamp", "--num-pseudo-inputs", "4",
                 "--devices", "2", "--threads", "1", "--out", str(run)]) == 0
    model, guide, *_ = load_run(run)
    assert model.prior.guide() is guide and model.prior.num_clusters == 4
