"""GMVAEClusterer: each method agrees with the functional API it wraps, save/load round-trips through the
CLI's run folder, and ``pyro-gmvae predict`` writes the same labels."""

import numpy as np
import pyro
import pytest
import torch

from pyro_gmvae import GMVAEClusterer, ModelConfig, TrainConfig, load_dataset, predict, responsibilities
from pyro_gmvae.cli import main
from pyro_gmvae.errors import DataError
from pyro_gmvae.evaluation.generation import sample_latents_per_cluster
from pyro_gmvae.evaluation.marginal import elbo_per_datapoint
from pyro_gmvae.runs import load_run


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = load_dataset("synthetic", num_datapoints=300)
    run = tmp_path_factory.mktemp("estimator") / "run"
    clusterer = GMVAEClusterer(num_clusters=4, epochs=2, pretrain_epochs=1, batch_size=100, run_dir=run,
                               progress=False).fit(data.x.numpy(), data.y.numpy())
    return clusterer, data, run


def test_fit_takes_the_cli_defaults_of_the_data():
    data = load_dataset("synthetic", num_datapoints=300)
    # a Dataset of a known name takes that data set's defaults, as `pyro-gmvae train --dataset synthetic` does
    clusterer = GMVAEClusterer(epochs=0, pretrain_epochs=0, progress=False).fit(data)
    assert clusterer.model_config_ == ModelConfig.for_dataset(data, model="vade")
    assert clusterer.train_config_ == TrainConfig.for_dataset("synthetic", epochs=0, pretrain_epochs=0)
    assert clusterer.model_config_.network == "toy" and clusterer.model_config_.num_clusters == data.num_classes


def test_methods_agree_with_the_functional_api(fitted):
    clusterer, data, run = fitted
    model, guide = clusterer.model_, clusterer.guide_
    x = data.x[:50]
    expected = responsibilities(model, guide, x).numpy()
    np.testing.assert_allclose(clusterer.predict_proba(x.numpy()), expected, rtol=1e-6)
    np.testing.assert_array_equal(clusterer.predict(x), predict(model, guide, x).numpy())
    np.testing.assert_allclose(clusterer.transform(x), guide.site_dists(x)["z"].mean.detach().numpy(), rtol=1e-6)
    torch.manual_seed(3)
    elbo = elbo_per_datapoint(model, guide, x, num_samples=5).numpy()
    np.testing.assert_allclose(clusterer.score_samples(x, num_samples=5, seed=3), elbo, rtol=1e-5)
    assert clusterer.score(x, num_samples=5, seed=3) == pytest.approx(float(elbo.mean()), rel=1e-5)


def test_sample_matches_the_prior_per_cluster(fitted):
    clusterer, data, _ = fitted
    x, clusters = clusterer.sample(6, cluster=2, seed=1)
    pyro.set_rng_seed(1)
    z = sample_latents_per_cluster(clusterer.model_.prior, 6)[2]
    np.testing.assert_allclose(x, clusterer.model_.decoder.x_dist(z).mean.detach().numpy(), rtol=1e-6)
    assert x.shape == (6, data.data_dim) and (clusters == 2).all()
    x, clusters = clusterer.sample(7, seed=1)
    assert x.shape == (7, data.data_dim) and clusters.shape == (7,) and set(clusters) <= set(range(4))


def test_save_and_load_use_the_cli_run_folder(fitted, tmp_path):
    clusterer, data, run = fitted
    saved = clusterer.save(tmp_path / "copy")
    loaded = GMVAEClusterer.load(saved)
    model, guide, model_config, _, _ = load_run(run)
    assert loaded.model_config_ == model_config == clusterer.model_config_
    np.testing.assert_allclose(loaded.predict_proba(data.x), responsibilities(model, guide, data.x).numpy(), rtol=1e-6)


def test_predict_command_writes_the_estimators_labels(fitted, tmp_path, capsys):
    clusterer, data, run = fitted
    path = tmp_path / "new.npy"
    np.save(path, data.x[:20].numpy())
    assert main(["predict", str(run), "--data", str(path), "--out", str(tmp_path / "labels.csv"), "--proba"]) == 0
    lines = (tmp_path / "labels.csv").read_text().splitlines()
    assert lines[0] == "cluster,p0,p1,p2,p3" and len(lines) == 21
    assert [int(line.split(",")[0]) for line in lines[1:]] == clusterer.predict(data.x[:20]).tolist()


def test_new_data_of_another_width_is_refused(fitted):
    clusterer, _, _ = fitted
    with pytest.raises(DataError, match="X has 3 features, but GMVAEClusterer is expecting 2 features as input; "
                                        "pass rows like the training data"):
        clusterer.predict(np.zeros((4, 3), dtype=np.float32))


def test_a_data_spec_lets_the_cli_evaluate_an_estimators_run(tmp_path):
    from pyro_gmvae.evaluation import evaluate_run

    data = load_dataset("synthetic", num_datapoints=200)
    GMVAEClusterer(num_clusters=3, epochs=1, pretrain_epochs=0, run_dir=tmp_path / "run", progress=False).fit(
        data, data_spec={"dataset": "synthetic", "num_datapoints": 200})
    assert evaluate_run(tmp_path / "run", num_samples=2)["num_datapoints"] == 200


def test_evaluating_a_run_fitted_on_arrays_says_the_data_are_not_stored(fitted):
    from pyro_gmvae.evaluation import evaluate_run

    _, _, run = fitted
    with pytest.raises(DataError, match="in-memory data.*pyro-gmvae predict"):
        evaluate_run(run, num_samples=2)


def test_a_preset_names_the_model_unless_one_is_given():
    data = load_dataset("synthetic", num_datapoints=200)
    clusterer = GMVAEClusterer(preset="gmvae-synthetic", epochs=0, progress=False).fit(data)
    assert clusterer.model_config_.model == "gmvae" and clusterer.model_config_.num_clusters == 8
    assert GMVAEClusterer("vade", preset="gmvae-synthetic", epochs=0, pretrain_epochs=0,
                          progress=False).fit(data).model_config_.model == "vade"


def test_predict_refuses_a_folder_as_out_and_a_file_of_another_width(fitted, tmp_path, capsys):
    _, _, run = fitted
    path = tmp_path / "wide.npy"
    np.save(path, np.zeros((3, 5), dtype=np.float32))
    assert main(["predict", str(run), "--data", str(path), "--out", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["predict", str(run), "--data", str(path), "--out", str(tmp_path / "new" / "labels.csv")]) == 2
    assert "X has 5 features, but GMVAEClusterer is expecting 2 features as input; pass rows like the training" \
        in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_the_digits_label_weight_gives_way_to_another_cluster_inference():
    """The digits default's warm-up label weight needs the exact clusters: an estimator asked for amortized
    clusters on the digits trains without it (as the command line), and refuses it when asked for."""
    x = np.random.default_rng(0).random((40, 64))
    clusterer = GMVAEClusterer(dataset="digits", num_clusters=3, cluster_inference="amortized", network="toy",
                               epochs=1, pretrain_epochs=0, progress=False).fit(x)
    assert clusterer.labels_.shape == (40,)
    with pytest.raises(ValueError, match="label weight"):
        GMVAEClusterer(dataset="digits", num_clusters=3, cluster_inference="amortized", network="toy", epochs=1,
                       pretrain_epochs=0, init_warmup_label_weight=1.0, progress=False).fit(x)
