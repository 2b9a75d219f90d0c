"""Checkpoints are read with ``torch.load(weights_only=True)``: a crafted file cannot run code when opened."""

import json
import pathlib

import pytest
import torch

from pyro_gmvae import ModelConfig, TrainConfig
from pyro_gmvae.cli import main
from pyro_gmvae.errors import CheckpointError
from pyro_gmvae.runs import CHECKPOINT, CONFIG, FORMAT, PRETRAINED, config_record, load_checkpoint, load_run

DATA = {"dataset": "synthetic", "num_datapoints": 200}


class _Payload:
    """Unpickling this calls ``Path.touch(marker)``: proof that the file ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return pathlib.Path.touch, (pathlib.Path(self.marker),)


def _crafted_run(folder, filename, marker):
    folder.mkdir()
    model_config = ModelConfig(data_dim=2, num_clusters=3, latent_dim=2, network="toy", likelihood="normal")
    (folder / CONFIG).write_text(json.dumps(config_record(model_config, TrainConfig(epochs=1), DATA)))
    torch.save({"format": FORMAT, "model": {}, "guide": {}, "payload": _Payload(marker)}, folder / filename)
    return folder


def test_a_real_checkpoint_loads_with_the_allow_list(tmp_path):
    assert main(["train", "--dataset", "synthetic", "--num-datapoints", "200", "--num-clusters", "3", "--epochs", "1",
                 "--pretrain-epochs", "1", "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]) == 0
    state = load_checkpoint(tmp_path / "run")
    assert state["epoch"] == 1 and state["rng"]["numpy"][1].dtype.name == "uint32"  # numpy's state, allow-listed
    assert set(load_checkpoint(tmp_path / "run" / PRETRAINED)) == {"format", "model", "guide", "pretrain_report"}


def test_a_crafted_checkpoint_is_refused_by_load_run_and_evaluate(tmp_path, capsys):
    marker = tmp_path / "marker"
    run = _crafted_run(tmp_path / "run", CHECKPOINT, marker)
    with pytest.raises(CheckpointError, match=r"holds more than tensors.*GLOBAL .*could run code") as e:
        load_run(run)
    assert "\n" not in str(e.value)
    assert main(["evaluate", str(run), "--num-samples", "4"]) != 0
    err = capsys.readouterr().err
    assert "holds more than tensors" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists()


def test_a_crafted_pretrained_file_is_refused_by_train_pretrained(tmp_path, capsys):
    marker = tmp_path / "marker"
    source = _crafted_run(tmp_path / "source", PRETRAINED, marker)
    out = tmp_path / "out"
    assert main(["train", "--dataset", "synthetic", "--num-datapoints", "200", "--num-clusters", "3", "--epochs", "1",
                 "--pretrained", str(source), "--out", str(out), "--no-progress", "--threads", "1"]) != 0
    err = capsys.readouterr().err
    assert "pretrained.pt holds more than tensors" in err and len(err.strip().splitlines()) == 1
    assert not marker.exists() and not out.exists()


@pytest.mark.parametrize("command", [["sample", "RUN"], ["plot", "RUN"], ["predict", "RUN", "--data", "DATA"],
                                     ["evaluate", "RUN", "--num-samples", "4", "--no-save"],
                                     ["train", "--resume", "RUN", "--epochs", "2", "--no-progress"]])
def test_every_command_refuses_a_crafted_checkpoint_without_running_it(command, tmp_path, capsys):
    import numpy as np

    marker = tmp_path / "marker"
    run = _crafted_run(tmp_path / "run", CHECKPOINT, marker)
    np.save(tmp_path / "x.npy", np.zeros((3, 2), np.float32))
    argv = [str(run) if a == "RUN" else str(tmp_path / "x.npy") if a == "DATA" else a for a in command]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "holds more than tensors" in err and len(err.splitlines()) == 1, err
    assert not marker.exists()
