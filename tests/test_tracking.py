"""Experiment tracking: the Trainer's callbacks see every epoch of the run in order, and ``--tensorboard`` /
``tensorboard=`` write event files whose scalars are metrics.jsonl's rows, read back with TensorBoard's own
reader; without the tensorboard package, one line says what to install before any work."""

import json
import sys

import pytest
import torch

from cli_cases import TINY, snapshot
from pyro_gmvae import GMVAEClusterer, ModelConfig, TrainConfig, Trainer, build, cli, from_tensor
from pyro_gmvae.errors import ConfigError
from pyro_gmvae.inference.callbacks import Callback
from pyro_gmvae.runs import load_checkpoint

event_accumulator = pytest.importorskip("tensorboard.backend.event_processing.event_accumulator")

START = ["--pretrain-epochs", "3", "--init", "gmm", "--init-warmup-epochs", "2"]


def _events(folder):
    accumulator = event_accumulator.EventAccumulator(str(folder), size_guidance={"scalars": 0, "images": 0})
    accumulator.Reload()
    scalars = {tag: [(e.step, e.value) for e in accumulator.Scalars(tag)] for tag in accumulator.Tags()["scalars"]}
    return scalars, accumulator.Tags()["images"]


def test_tensorboard_scalars_are_the_metrics_rows_and_the_start(tmp_path, monkeypatch):
    out, logs = tmp_path / "run", tmp_path / "logs"
    argv = ["--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--num-clusters", "3",
            "--batch-size", "64", "--epochs", "3", "--no-progress", *START]
    assert cli.main(["train", *argv, "--out", str(out), "--tensorboard", str(logs)]) == 0
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    scalars, images = _events(logs)
    fields = {k for row in rows for k, v in row.items() if k != "epoch" and isinstance(v, (int, float))}
    assert {"elbo", "lr", "acc", "nmi", "num_used_clusters", "seconds"} <= fields
    for field in fields:  # every field, every epoch, at the epoch's step (float32 in the event file)
        expected = [(row["epoch"], pytest.approx(row[field], rel=1e-6, abs=1e-6)) for row in rows]
        assert scalars[f"train/{field}"] == expected, field
    report = load_checkpoint(out)["pretrain_report"]
    assert scalars["pretrain/loss"] == [(e, pytest.approx(v, rel=1e-6)) for e, v in
                                        enumerate(report["pretrain_losses"], 1)]
    assert [step for step, _ in scalars["warmup/loss"]] == [1, 2]
    assert scalars["warmup/loss"][-1][1] == pytest.approx(report["warmup_loss"], rel=1e-6)
    assert scalars["start/init_acc"] == [(0, pytest.approx(report["init_acc"], rel=1e-6))]
    assert set(images) == {"curves", "latent"}


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_begin(self, trainer, data):
        self.events.append(("begin", data.num_datapoints))

    def on_pretrain_epoch_end(self, trainer, row):
        self.events.append((row["phase"], row["epoch"], row["loss"]))

    def on_epoch_end(self, trainer, row):
        self.events.append(("epoch", dict(row)))

    def on_train_end(self, trainer, history):
        self.events.append(("end", len(history)))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # collapse on random data is beside the point
def test_callbacks_see_the_start_and_every_epoch_in_order():
    data = from_tensor(torch.rand(40, 6), torch.arange(40) % 3)
    model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
    recorder = Recorder()
    trainer = Trainer(model, guide, TrainConfig(epochs=2, batch_size=20, pretrain_epochs=2, init_warmup_epochs=1),
                      progress=False, callbacks=[recorder])
    history = trainer.fit(data)
    report = trainer.pretrain_report
    assert recorder.events == [
        ("begin", 40),
        ("pretrain", 1, report["pretrain_losses"][0]), ("pretrain", 2, report["pretrain_losses"][1]),
        ("warmup", 1, report["warmup_loss"]),
        ("epoch", history[0]), ("epoch", history[1]),
        ("end", 2),
    ]


def test_the_estimator_takes_tensorboard_and_callbacks(tmp_path):
    recorder = Recorder()
    x = torch.rand(60, 6)
    clusterer = GMVAEClusterer(num_clusters=3, latent_dim=2, network="toy", epochs=2, pretrain_epochs=1,
                               init_warmup_epochs=0, batch_size=30, progress=False, tensorboard=tmp_path / "tb",
                               callbacks=[recorder]).fit(x)
    scalars, _ = _events(tmp_path / "tb")
    assert [v for _, v in scalars["train/elbo"]] == [pytest.approx(r["elbo"], rel=1e-6) for r in clusterer.history_]
    assert [e[1]["epoch"] for e in recorder.events if e[0] == "epoch"] == [1, 2]


def test_a_callback_without_events_is_refused():
    model, guide = build(ModelConfig(data_dim=6, num_clusters=3, latent_dim=2, network="toy"))
    with pytest.raises(ConfigError, match="instances of a Callback subclass"):
        Trainer(model, guide, TrainConfig(), progress=False, callbacks=[Recorder])


def test_without_the_package_one_line_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "tensorboard", None)  # as if not installed
    before = snapshot(tmp_path)
    assert cli.main(["train", *TINY, "--out", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pyro-gmvae train: error: --tensorboard ")
    assert "install pyro-gmvae[tensorboard]" in lines[0]
    assert snapshot(tmp_path) == before  # before any work: no run folder, no log folder
    with pytest.raises(ConfigError, match=r"tensorboard= .*install pyro-gmvae\[tensorboard\]"):
        GMVAEClusterer(tensorboard=tmp_path / "tb").fit(torch.rand(20, 6))
