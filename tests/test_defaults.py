"""One set of defaults: the command line and the Python API build the same configs from pyro_gmvae.defaults."""

import pytest

from pyro_gmvae import DATASET_DEFAULTS, PRESETS, ModelConfig, TrainConfig, cli, defaults_for
from pyro_gmvae.cli import build_parser
from pyro_gmvae.data import DATASETS
from pyro_gmvae.defaults import resolve

DATA_DIMS = {"digits": 64, "synthetic": 2, "mnist": 784, "fashion-mnist": 784, "svhn": 3072, "file": 10}


def _cli_configs(argv, data_dim):
    args = build_parser().parse_args(["train", *argv])
    model_kw, train_kw, data_kw = cli._resolve(args)
    model_kw.setdefault("likelihood", "normal")
    model_kw.setdefault("num_clusters", 10)
    return ModelConfig(data_dim=data_dim, **model_kw), TrainConfig(**train_kw), data_kw


@pytest.mark.parametrize("dataset", DATASETS)
def test_python_reaches_the_cli_defaults_of_every_dataset(dataset):
    model, train, _ = _cli_configs(["--dataset", dataset], DATA_DIMS[dataset])
    assert TrainConfig.for_dataset(dataset) == train
    assert ModelConfig.for_dataset(dataset, data_dim=DATA_DIMS[dataset], likelihood="normal",
                                   num_clusters=10) == model


@pytest.mark.parametrize("preset", PRESETS)
def test_python_reaches_every_preset(preset):
    dataset = defaults_for(preset=preset)["dataset"]
    model, train, data = _cli_configs(["--preset", preset, "--seed", "3"], DATA_DIMS[dataset])
    assert TrainConfig.for_dataset(dataset, preset=preset, seed=3) == train
    assert ModelConfig.for_dataset(dataset, preset=preset, data_dim=DATA_DIMS[dataset], likelihood=model.likelihood,
                                   num_clusters=model.num_clusters) == model
    assert data["dataset"] == dataset


def test_the_cli_keeps_its_old_names():
    assert cli.PRESETS is PRESETS and cli.DATASET_DEFAULTS is DATASET_DEFAULTS


def test_unknown_settings_are_refused_by_name():
    from pyro_gmvae.errors import ConfigError

    with pytest.raises(ConfigError, match=r"TrainConfig has no fields \['learning_rate'\]"):
        TrainConfig.for_dataset("digits", learning_rate=1e-3)


def test_every_config_field_is_a_setting_of_the_cli_and_the_estimator():
    """A field missing from MODEL_FIELDS/TRAIN_FIELDS would be dropped by resolve() (its flag silently ignored)."""
    import dataclasses

    from pyro_gmvae.defaults import MODEL_FIELDS, TRAIN_FIELDS

    assert {f.name for f in dataclasses.fields(ModelConfig)} - set(MODEL_FIELDS) == {"data_dim"}
    assert {f.name for f in dataclasses.fields(TrainConfig)} == set(TRAIN_FIELDS)
    model, train, _ = _cli_configs(["--cluster-inference", "relaxed", "--temperature-start", "2",
                                    "--temperature-end", "0.3", "--temperature-decay", "0.1"], 64)
    assert model.cluster_inference == "relaxed"
    assert (train.temperature_start, train.temperature_end, train.temperature_decay) == (2.0, 0.3, 0.1)


@pytest.mark.parametrize("dataset, preset", [(d, None) for d in DATASETS] +
                         [(defaults_for(preset=p)["dataset"], p) for p in PRESETS])
def test_the_learning_rate_floor_is_below_the_rate(dataset, preset):
    """A floor above the rate (digits had min_lr 2e-4 over lr 1e-4) would make --lr-decay do nothing."""
    train = TrainConfig.for_dataset(dataset, preset=preset)
    assert train.min_lr <= train.lr, (dataset, preset, train.min_lr, train.lr)


def test_a_presets_prior_stays_with_its_model():
    assert resolve({}, "vade-mnist")[0]["prior"] == "full-mixture"
    assert resolve({"model": "vade"}, "vade-mnist")[0]["prior"] == "full-mixture"
    assert "prior" not in resolve({"model": "hierarchical"}, "vade-mnist")[0]  # the model's own prior
    assert resolve({"model": "vae", "prior": "mixture"}, "vade-mnist")[0]["prior"] == "mixture"  # a flag wins
    assert "prior" not in resolve({}, "vade-mnist-diagonal")[0]  # the paper's diagonal mixture


def test_the_digits_label_weight_is_left_out_for_another_cluster_inference():
    """The digits default warms up with the label weight 1, the exact clusters' cross-entropy: another
    cluster inference runs without it unless it is asked for (and then the trainer refuses it)."""
    _, train, _ = resolve({"dataset": "digits"})
    assert train["init_warmup_label_weight"] == 1.0
    _, train, _ = resolve({"dataset": "digits", "cluster_inference": "amortized"})
    assert "init_warmup_label_weight" not in train
    _, train, _ = resolve({"dataset": "digits", "cluster_inference": "amortized", "init_warmup_label_weight": 2.0})
    assert train["init_warmup_label_weight"] == 2.0
