"""Bad input fails early with the library's own error (or a one-line CLI error) and writes nothing;
a non-finite loss stops training without touching the last good checkpoint; cluster collapse is
logged and warned about; scales stay positive and finite for any raw value."""

import json
import warnings

import numpy as np
import pyro
import pytest
import torch

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, cli, from_tensor, runs
from pyro_gmvae.data import load_dataset, write_idx
from pyro_gmvae.errors import CheckpointError, ConfigError, DataError, DeviceError, GMVAEError, TrainingError
from pyro_gmvae.inference.amortized import GUIDES
from pyro_gmvae.models import PRIORS
from pyro_gmvae.models.priors import positive
from cli_cases import TINY, assert_refused, copy_run, good_run, on_run, snapshot, train  # noqa: F401

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")


def _npy(tmp_path, array):
    path = tmp_path / "data.npy"
    np.save(path, array)
    return ["--dataset", "file", "--data-path", str(path), "--network", "toy", "--epochs", "1", "--no-progress"]


def _mnist_dir(tmp_path, spoil=None):
    folder = tmp_path / "mnist"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for stem, n in (("train", 6), ("t10k", 4)):
        write_idx(folder / f"{stem}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(folder / f"{stem}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    images = folder / "train-images-idx3-ubyte.gz"
    if spoil == "truncated":
        raw = __import__("gzip").decompress(images.read_bytes())
        images.write_bytes(__import__("gzip").compress(raw[: len(raw) // 2]))
    elif spoil == "corrupt":
        images.write_bytes(images.read_bytes()[:40])
    return ["--dataset", "mnist", "--data-dir", str(folder), "--network", "toy", "--epochs", "1", "--no-progress"]


def _edit_config(run, **model):
    raw = json.loads((run / runs.CONFIG).read_text())
    raw["model"].update(model)
    (run / runs.CONFIG).write_text(json.dumps(raw))


def with_files(make):
    return lambda tmp_path, good_run: (["train", *make(tmp_path)], None)


CLI_CASES = {
    # data
    "nan-data": (with_files(lambda d: _npy(d, np.array([[0.1, np.nan], [0.2, 0.3], [0.5, 0.5]]))), ["NaN"]),
    "inf-data": (with_files(lambda d: _npy(d, np.array([[0.1, np.inf], [0.2, 0.3], [0.5, 0.5]]))), ["NaN/Inf"]),
    "bernoulli-outside-0-1": (with_files(lambda d: _npy(d, np.arange(12.0).reshape(6, 2)) + ["--likelihood",
                                                                                            "bernoulli"]),
                              ["outside [0, 1]", "--likelihood normal"]),
    "wrong-ndim": (with_files(lambda d: _npy(d, np.arange(6.0))), ["2-D", "reshape"]),
    "empty-data": (with_files(lambda d: _npy(d, np.zeros((0, 3)))), ["empty"]),
    "fewer-datapoints-than-clusters": (train("--num-datapoints", "3", "--num-clusters", "5"),
                                       ["3 datapoints cannot fill 5 clusters", "fewer clusters"]),
    # sizes and rates
    "num-clusters": (train("--num-clusters", "0"), ["--num-clusters must be > 0, got 0"]),
    "latent-dim": (train("--latent-dim", "0"), ["--latent-dim must be > 0"]),
    "batch-size": (train("--batch-size", "0"), ["--batch-size must be > 0"]),
    "epochs": (train("--epochs", "-1"), ["epochs must be >= 0"]),
    "lr-zero": (train("--lr", "0"), ["lr must be > 0"]),
    "lr-negative": (train("--lr", "-0.1"), ["lr must be > 0"]),
    "num-particles": (train("--num-particles", "0"), ["--num-particles must be > 0"]),
    "free-bits": (train("--free-bits", "-0.5"), ["free-bits lambda must be >= 0", "use 0 to disable"]),
    "eval-num-samples": (on_run(lambda run: ["evaluate", str(run), "--num-samples", "0"]),
                         ["--num-samples must be > 0"]),
    # names
    "model": (train("--model", "nope"), ["unknown model 'nope'", "choose one of", "gmvae", "vade"]),
    "prior": (train("--prior", "nope"), ["unknown prior 'nope'", "mixture", "standard-normal"]),
    "guide": (train("--guide", "nope"), ["unknown guide 'nope'", "diagonal, iaf, lowrank"]),
    "dataset": (train("--dataset", "nope"), ["unknown dataset 'nope'", "digits", "synthetic"]),
    "preset": (train("--preset", "nope"), ["unknown preset 'nope'", "vade-mnist"]),
    "network": (train("--network", "nope"), ["unknown network 'nope'", "toy"]),
    "prior-guide-mismatch": (train("--latent-dim", "1", "--guide", "lowrank"),
                             ["lowrank guide needs latent sites of at least 2 dimensions", "--guide diagonal"]),
    "gmvae-noise-guide-mismatch": (train("--model", "gmvae", "--noise-dim", "1", "--guide", "lowrank"),
                                   ["lowrank guide needs latent sites of at least 2 dimensions"]),
    "free-bits-site-not-in-model": (train("--model", "vade", "--free-bits", "0.5", "--free-bits-site", "w"),
                                    ["unknown free-bits site 'w'", "cluster, z"]),
    # --data-dir
    "data-dir-missing": (lambda d, g: (["train", "--dataset", "mnist", "--data-dir", str(d / "nowhere")], None),
                         ["--data-dir", "does not exist"]),
    "data-dir-without-idx": (with_files(lambda d: (d / "empty").mkdir() or
                                        ["--dataset", "mnist", "--data-dir", str(d / "empty")]),
                             ["lacks the mnist files", "train-images-idx3-ubyte"]),
    "data-dir-truncated-idx": (with_files(lambda d: _mnist_dir(d, "truncated")), ["truncated", "download it again"]),
    "data-dir-corrupt-gzip": (with_files(lambda d: _mnist_dir(d, "corrupt")), ["corrupt or truncated gzip"]),
    # device
    "device-cuda": (train("--device", "cuda"), ["CUDA is not available", "--device cpu"]),
    # checkpoints and run folders
    "resume-missing-run": (lambda d, g: (["train", "--resume", str(d / "out")], d),
                           ["has no config.json", "pyro-gmvae train"]),
    "resume-missing-checkpoint": (on_run(lambda run: ["train", "--resume", str(run)],
                                         lambda run: (run / runs.CHECKPOINT).unlink()),
                                  ["checkpoint.pt is missing", "--overwrite"]),
    "resume-truncated-checkpoint": (on_run(lambda run: ["train", "--resume", str(run)],
                                           lambda run: (run / runs.CHECKPOINT).write_bytes(
                                               (run / runs.CHECKPOINT).read_bytes()[:1000])),
                                    ["truncated or not a checkpoint"]),
    "resume-garbage-checkpoint": (on_run(lambda run: ["train", "--resume", str(run)],
                                         lambda run: (run / runs.CHECKPOINT).write_bytes(b"not a checkpoint")),
                                  ["truncated or not a checkpoint"]),
    "resume-foreign-checkpoint": (on_run(lambda run: ["train", "--resume", str(run)],
                                         lambda run: torch.save({"weights": torch.ones(2)}, run / runs.CHECKPOINT)),
                                  ["is not a pyro-gmvae checkpoint"]),
    "resume-other-configuration": (on_run(lambda run: ["train", "--resume", str(run)],
                                          lambda run: _edit_config(run, num_clusters=4)),
                                   ["another model configuration"]),
    "resume-ignored-flags": (on_run(lambda run: ["train", "--resume", str(run), "--lr", "0.1", "--model", "vade"]),
                             ["--model, --lr would be ignored", "only --epochs and --device"]),
    "resume-fewer-epochs": (on_run(lambda run: ["train", "--resume", str(run), "--epochs", "0"]),
                            ["already at epoch 1, past --epochs 0", "pass --epochs 1 or more"]),
    "resume-and-overwrite": (on_run(lambda run: ["train", "--resume", str(run), "--overwrite"]),
                             ["--resume and --overwrite exclude each other"]),
    "resume-two-folders": (on_run(lambda run: ["train", "--resume", str(run), "--out", str(run.parent / "other")]),
                           ["name two folders"]),
    "pretrained-missing": (lambda d, g: (["train", *TINY, "--model", "vade", "--pretrained", str(d / "nowhere")],
                                         None), ["no checkpoint at", "pretrained.pt"]),
    "finished-run": (on_run(lambda run: ["train", "--model", "gmvae", *TINY, "--out", str(run)]),
                     ["already holds a run", "--resume", "--overwrite"]),
}


@pytest.mark.parametrize("name", [pytest.param(n, marks=NO_CUDA) if "cuda" in n else n for n in CLI_CASES])
def test_cli_bad_input(name, tmp_path, good_run, capsys):
    assert_refused(CLI_CASES[name], tmp_path, good_run, capsys)


# -- the Python API -------------------------------------------------------------------------------

def _dataset(n=20, dim=6):
    return from_tensor(torch.rand(n, dim))


def _train_run(tmp_path, model=None, train=None, data=None, **kw):
    model = model or ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy")
    train = train or TrainConfig(epochs=1, batch_size=10, pretrain_epochs=0)
    return runs.train_run(model, train, _dataset() if data is None else data, tmp_path / "out", progress=False, **kw)


API_CASES = {
    "nan-data": (lambda d: from_tensor(torch.tensor([[0.0, float("nan")]])), DataError, "NaN"),
    "inf-data": (lambda d: from_tensor(torch.tensor([[0.0, float("inf")]])), DataError, "NaN/Inf"),
    "bernoulli-outside-0-1": (lambda d: from_tensor(torch.tensor([[0.0, 2.0]]), likelihood="bernoulli"), DataError,
                              r"outside \[0, 1\]"),
    "wrong-ndim": (lambda d: from_tensor(torch.rand(5)), DataError, "must be 2-D"),
    "empty-data": (lambda d: from_tensor(torch.rand(0, 6)), DataError, "empty"),
    "feature-size": (lambda d: _train_run(d, data=_dataset(dim=5)), DataError,
                     "5 features but the model expects 6"),
    "feature-size-trainer": (lambda d: Trainer(*build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2,
                                                                  network="toy")),
                                               TrainConfig(epochs=1, pretrain_epochs=0), progress=False
                                               ).fit(_dataset(dim=5)), DataError, "5 features but the model expects 6"),
    "fewer-datapoints-than-clusters": (lambda d: _train_run(d, data=_dataset(n=2)), DataError,
                                       "2 datapoints cannot fill 3 clusters"),
    "not-a-dataset": (lambda d: _train_run(d, data=torch.rand(20, 6)), DataError, "from_tensor"),
    "num-clusters": (lambda d: ModelConfig(num_clusters=0), ConfigError, "num_clusters must be > 0"),
    "latent-dim": (lambda d: ModelConfig(latent_dim=0), ConfigError, "latent_dim must be > 0"),
    "batch-size": (lambda d: TrainConfig(batch_size=0), ConfigError, "batch_size must be > 0"),
    "epochs": (lambda d: TrainConfig(epochs=-1), ConfigError, "epochs must be >= 0"),
    "lr": (lambda d: TrainConfig(lr=0.0), ConfigError, "lr must be > 0"),
    "num-particles": (lambda d: TrainConfig(num_particles=0), ConfigError, "num_particles must be > 0"),
    "free-bits": (lambda d: TrainConfig(free_bits=-1.0), ConfigError, "free-bits lambda must be >= 0"),
    "model": (lambda d: ModelConfig(model="nope"), ConfigError, "unknown model 'nope'; choose one of: .*vade"),
    "prior": (lambda d: ModelConfig(prior="nope"), ConfigError, "unknown prior 'nope'; choose one of: .*mixture"),
    "guide": (lambda d: ModelConfig(guide="nope"), ConfigError, "unknown guide 'nope'; choose one of: diagonal"),
    "dataset": (lambda d: load_dataset("nope"), ConfigError, "unknown dataset 'nope'; choose one of: .*digits"),
    "prior-guide-mismatch": (lambda d: _train_run(d, model=ModelConfig(data_dim=6, num_clusters=3, latent_dim=1,
                                                                       guide="lowrank", network="toy")),
                             ConfigError, "lowrank guide needs latent sites of at least 2"),
    "free-bits-site": (lambda d: _train_run(d, train=TrainConfig(epochs=1, batch_size=10, pretrain_epochs=0,
                                                                 free_bits=0.5, free_bits_site="w")),
                       ConfigError, "unknown free-bits site 'w'"),
    "checkpoint-missing": (lambda d: runs.load_checkpoint(d / "nowhere"), CheckpointError, "no checkpoint at"),
    "checkpoint-truncated": (lambda d: (d / "c.pt").write_bytes(b"\x80\x02garbage")
                             and runs.load_checkpoint(d / "c.pt"),
                             CheckpointError, "truncated or not a checkpoint"),
    "checkpoint-foreign": (lambda d: torch.save([1, 2], d / "c.pt") or runs.load_checkpoint(d / "c.pt"),
                           CheckpointError, "not a pyro-gmvae checkpoint"),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_bad_input(name, tmp_path):
    call, error, match = API_CASES[name]
    with pytest.raises(error, match=match) as info:
        call(tmp_path)
    assert isinstance(info.value, GMVAEError) and isinstance(info.value, (ValueError, TypeError, RuntimeError))
    assert not (tmp_path / "out").exists()


@NO_CUDA
def test_api_device_without_cuda():
    with pytest.raises(DeviceError, match="CUDA is not available"):
        runs.check_device("cuda")
    assert issubclass(DeviceError, RuntimeError)


def test_api_resume_with_another_configuration(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    model, train, _ = runs.read_config(run)
    data = load_dataset("synthetic", num_datapoints=200)
    before = snapshot(run)
    other = ModelConfig(**{**model.to_dict(), "num_clusters": 4})
    with pytest.raises(CheckpointError, match="another model configuration"):
        runs.train_run(other, train, data, run, resume=True, progress=False)
    with pytest.raises(CheckpointError, match="other training settings .*'lr'"):
        runs.train_run(model, TrainConfig(**{**train.to_dict(), "lr": 0.5}), data, run, resume=True, progress=False)
    with pytest.raises(ConfigError, match="already holds a run"):
        runs.train_run(model, train, data, run, progress=False)
    assert snapshot(run) == before


# -- non-finite loss ----------------------------------------------------------------------------------

@pytest.mark.parametrize("where", ["loss", "parameters"])
def test_non_finite_stops_and_keeps_the_last_good_checkpoint(where, tmp_path, monkeypatch, capsys):
    # 200 datapoints in batches of 64: 4 steps per epoch; spoil epoch 2, step 2 (loss) or its last step
    # (parameters, with a finite loss: caught before the checkpoint of epoch 2 is written)
    target = 6 if where == "loss" else 8
    real_step, calls = Trainer._step, []  # one optimiser step of the trainer

    def step(self, *args, **kwargs):
        loss = real_step(self, *args, **kwargs)
        calls.append(loss)
        if len(calls) == target:
            if where == "loss":
                return float("nan")
            with torch.no_grad():
                next(self.guide.parameters()).fill_(float("nan"))
        return loss

    monkeypatch.setattr(Trainer, "_step", step)
    out = tmp_path / "run"
    assert cli.main(["train", "--model", "gmvae", *TINY, "--epochs", "3", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    expected = "non-finite loss (nan) at epoch 2, step 2" if where == "loss" else \
        "non-finite parameters (guide.encoder.0.weight) at epoch 2, step 4"
    assert expected in err and "checkpoint is kept" in err, err
    state = runs.load_checkpoint(out)
    assert state["epoch"] == 1
    assert [r["epoch"] for r in runs.read_metrics(out)] == [1]
    monkeypatch.undo()
    reference = tmp_path / "reference"  # the same run, stopped cleanly after epoch 1
    pyro.clear_param_store()
    assert cli.main(["train", "--model", "gmvae", *TINY, "--epochs", "1", "--out", str(reference)]) == 0
    good = runs.load_checkpoint(reference)
    for part in ("model", "guide"):
        for key, value in state[part].items():
            assert torch.isfinite(value).all() and torch.equal(value, good[part][key]), f"{part}.{key}"


def test_trainer_raises_training_error_on_nan_loss(monkeypatch):
    monkeypatch.setattr(Trainer, "_step", lambda self, *a, **k: float("inf"))
    model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
    trainer = Trainer(model, guide, TrainConfig(epochs=1, batch_size=10, pretrain_epochs=0), progress=False)
    with pytest.raises(TrainingError, match=r"non-finite loss \(inf\) at epoch 1, step 1"):
        trainer.fit(_dataset())
    assert trainer.epoch == 0


# -- cluster collapse -----------------------------------------------------------------------------

def test_collapse_is_logged_and_warned(tmp_path):
    data = load_dataset("synthetic", num_datapoints=200)
    config = ModelConfig(model="vade", data_dim=2, num_clusters=6, latent_dim=2, network="toy", likelihood="normal")
    model, guide = build(config)
    with torch.no_grad():
        model.prior.logits.copy_(torch.tensor([30.0, 0, 0, 0, 0, 0]))  # one cluster takes all the mass
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=100, lr=1e-4, pretrain_epochs=0),
                      progress=False)
    with pytest.warns(RuntimeWarning, match=r"epoch [12]: only 1 of 6 clusters are active .*--free-bits"):
        history = trainer.fit(data)
    assert [row["num_active_clusters"] for row in history] == [1, 1]


def test_no_collapse_warning_for_a_healthy_mixture():
    data = load_dataset("synthetic", num_datapoints=200)
    model, guide = build(ModelConfig(model="vade", data_dim=2, num_clusters=5, latent_dim=2, network="toy",
                                     likelihood="normal"))
    trainer = Trainer(model, guide, TrainConfig(epochs=1, batch_size=100, pretrain_epochs=10), progress=False)
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        history = trainer.fit(data)
    assert history[0]["num_active_clusters"] == 5 and history[0]["num_used_clusters"] == 5


# -- scales ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("raw", [-1e4, 0.0, 1e4])
def test_positive_is_bounded_away_from_zero_and_finite(raw):
    value = positive(torch.tensor(raw))
    assert torch.isfinite(value) and value >= 1e-3


def _check_dist(d, where):
    base = d.base_dist if hasattr(d, "base_dist") else d
    for attr in ("scale", "cov_diag", "probs"):
        if hasattr(type(base), attr) or attr in base.__dict__:
            value = getattr(base, attr)
            assert torch.isfinite(value).all(), f"{where}: {attr} is not finite"
            if attr == "probs":
                torch.testing.assert_close(value.sum(-1), torch.ones(value.shape[:-1]), msg=where)
                assert (value >= 0).all(), where
            else:
                assert (value > 0).all(), f"{where}: {attr} is not positive"


@pytest.mark.parametrize("raw", [-1e4, 1e4])
@pytest.mark.parametrize("prior_name", sorted(PRIORS))
def test_prior_scales_and_weights_survive_extreme_raw_values(prior_name, raw):
    config = ModelConfig(data_dim=6, num_clusters=4, latent_dim=5, noise_dim=2, prior=prior_name, network="toy")
    prior = build(config)[0].prior  # build: a prior may need the guide (the VampPrior's q(z | u_k))
    with torch.no_grad():
        for p in prior.parameters():
            p.fill_(raw)
    with pyro.plate("data", 3):
        trace = pyro.poutine.trace(prior).get_trace()
    sites = [s for s in trace.nodes.values() if s["type"] == "sample"]
    assert sites
    for site in sites:
        _check_dist(site["fn"], f"{prior_name} site {site['name']}")


@pytest.mark.parametrize("raw", [-1e4, 1e4])
# the iaf head's flows shift by a linear map of their input, unbounded by construction (as any affine
# autoregressive flow's): weights of 1e4 overflow float32 there, and no parameterisation of the scale prevents it
@pytest.mark.parametrize("guide_name", sorted(set(GUIDES) - {"iaf"}))
def test_guide_scales_survive_extreme_raw_values(guide_name, raw):
    head = GUIDES[guide_name](3, 5)
    with torch.no_grad():
        for p in head.parameters():
            p.fill_(raw)
    d = head(torch.ones(4, 3))
    _check_dist(d, guide_name)
    assert torch.isfinite(d.log_prob(d.mean)).all()


def test_decoder_scale_survives_extreme_raw_values():
    model, _ = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy", likelihood="normal"))
    for raw in (-1e4, 1e4):
        with torch.no_grad():
            model.decoder.scale_raw.fill_(raw)
        _check_dist(model.decoder.x_dist(torch.zeros(3, 2)), "decoder")
