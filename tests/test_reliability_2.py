"""Reliability, round two (issue 15): run folders have one owner at a time, ``--overwrite`` keeps the old
run until the new one has a checkpoint, ``--resume`` checks its data, every option is validated (NaN and
inf included), the Python API refuses what it cannot use, and I/O errors are one-line messages. Every
bad input fails with the library's own error, before anything is created, changed or lost."""

import errno
import json
import math
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import numpy as np
import pyro
import pytest
import torch

from pyro_gmvae import (ModelConfig, TrainConfig, Trainer, build, cli, from_tensor, log_marginal_likelihood, predict,
                        responsibilities, runs)
from pyro_gmvae.data import load_dataset, write_idx
from pyro_gmvae.errors import (CheckpointError, ConfigError, DataError, DeviceError, GMVAEError, StorageError)
from pyro_gmvae.evaluation.responsibilities import _brute_force_marginals, _guide_at, cluster_marginals
from pyro_gmvae.inference import make_elbo

TINY = ["--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--num-clusters", "3",
        "--batch-size", "64", "--epochs", "1", "--pretrain-epochs", "0", "--no-progress"]


def snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time (folders too: none may appear)."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


def toy(model="vade", **kw):
    config = dict(model=model, data_dim=6, num_clusters=4, latent_dim=5, network="toy")
    return build(ModelConfig(**{**config, **kw}))


# -- the Python API ------------------------------------------------------------------------------------

def _vade():
    return toy()


API_CASES = {
    "responsibilities-1d": (lambda: responsibilities(*_vade(), torch.rand(6)), DataError, r"must be 2-D .*reshape"),
    "predict-1d": (lambda: predict(*_vade(), torch.rand(6)), DataError, "must be 2-D"),
    "log-likelihood-1d": (lambda: log_marginal_likelihood(*_vade(), torch.rand(6), 4), DataError, "must be 2-D"),
    "responsibilities-features": (lambda: responsibilities(*_vade(), torch.rand(3, 5)), DataError,
                                  "5 features but the model expects 6"),
    "responsibilities-empty": (lambda: responsibilities(*_vade(), torch.rand(0, 6)), DataError, "empty"),
    "responsibilities-batch-size-0": (lambda: responsibilities(*_vade(), torch.rand(3, 6), batch_size=0),
                                      ConfigError, "batch_size must be a positive integer"),
    "responsibilities-vae": (lambda: responsibilities(*toy("vae"), torch.rand(3, 6)), ConfigError,
                             "no cluster sites .*model='vade'"),
    "responsibilities-unknown-site": (lambda: responsibilities(*_vade(), torch.rand(3, 6), site="nope"),
                                      ConfigError, "unknown cluster site 'nope'; choose one of: cluster"),
    "responsibilities-list": (lambda: responsibilities(*_vade(), [[0.5] * 6]), DataError, "torch.as_tensor"),
    "log-likelihood-bernoulli-at-5": (lambda: log_marginal_likelihood(*_vade(), torch.full((2, 6), 5.0), 4),
                                      DataError, r"outside \[0, 1\] .*likelihood='normal'"),
    "log-likelihood-num-samples": (lambda: log_marginal_likelihood(*_vade(), torch.rand(2, 6), 2.5), ConfigError,
                                   "num_samples must be a positive integer"),
    "build-a-string": (lambda: build("vade"), ConfigError, r"build takes a ModelConfig, got str .*ModelConfig\("),
    "num-clusters-nan": (lambda: ModelConfig(num_clusters=float("nan")), ConfigError,
                         "num_clusters must be an integer, got nan"),
    "num-clusters-inf": (lambda: ModelConfig(num_clusters=float("inf")), ConfigError,
                         "num_clusters must be an integer, got inf"),
    "num-clusters-none": (lambda: ModelConfig(num_clusters=None), ConfigError,
                          "num_clusters must be an integer, got None"),
    "num-clusters-float": (lambda: ModelConfig(num_clusters=3.0), ConfigError,
                           "num_clusters must be an integer, got 3.0; pass 3"),
    "model-name-not-a-string": (lambda: ModelConfig(model=["vade"]), ConfigError, "model must be a name"),
    "jit-a-string": (lambda: TrainConfig(jit="no"), ConfigError, "jit must be True or False, got 'no'"),
    "lr-nan": (lambda: TrainConfig(lr=float("nan")), ConfigError, "lr must be finite"),
    "lr-huge": (lambda: TrainConfig(lr=1e20), ConfigError, "lr must be at most 1"),
    "min-lr-nan": (lambda: TrainConfig(min_lr=float("nan")), ConfigError, "min_lr must be finite"),
    "lr-decay-nan": (lambda: TrainConfig(lr_decay=float("nan")), ConfigError, "lr_decay must be finite"),
    "lr-decay-above-1": (lambda: TrainConfig(lr_decay=1.5), ConfigError, "lr_decay must be at most 1"),
    "adam-eps-nan": (lambda: TrainConfig(adam_eps=float("nan")), ConfigError, "adam_eps must be finite"),
    "pretrain-lr-inf": (lambda: TrainConfig(pretrain_lr=float("inf")), ConfigError, "pretrain_lr must be finite"),
    "free-bits-nan": (lambda: TrainConfig(free_bits=float("nan")), ConfigError, "free_bits must be finite"),
    "free-bits-inf": (lambda: TrainConfig(free_bits=float("inf")), ConfigError, "free_bits must be finite"),
    "seed-negative": (lambda: TrainConfig(seed=-1), ConfigError, "seed must be >= 0"),
    "seed-huge": (lambda: TrainConfig(seed=99999999999), ConfigError, "seed must be at most 4.29497e\\+09"),
    "epochs-string": (lambda: TrainConfig(epochs="3"), ConfigError, "epochs must be an integer, got '3'"),
    "from-dict-list": (lambda: TrainConfig.from_dict([1]), ConfigError, "takes a dict, got list"),
    "fit-a-tensor": (lambda: Trainer(*_vade(), TrainConfig(epochs=1, pretrain_epochs=0), progress=False
                                     ).fit(torch.rand(20, 6)), DataError, r"fit takes a Dataset, got Tensor.*from_tensor"),
}


@pytest.mark.parametrize("name", list(API_CASES))
def test_api_refuses_with_the_library_error(name):
    call, error, match = API_CASES[name]
    with pytest.raises(error, match=match) as info:
        call()
    assert isinstance(info.value, GMVAEError)


def test_api_accepts_float64_and_numpy_input():
    model, guide = _vade()
    x = torch.rand(5, 6)
    expected = responsibilities(model, guide, x)
    torch.testing.assert_close(responsibilities(model, guide, x.double()), expected)
    torch.testing.assert_close(responsibilities(model, guide, x.numpy()), expected)
    assert predict(model, guide, from_tensor(x.double())).shape == (5,)
