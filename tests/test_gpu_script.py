"""benchmarks/gpu.sh: the shrunk CPU run writes its rows; bad input and a failed step stop it and leave the
results file as it was."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu.sh"
MNIST = ROOT.parent / "shared" / "data" / "mnist"


def run(tmp_path, *args, **env):
    full_env = {**os.environ, "PYTHON": sys.executable, "PYTHONPATH": str(ROOT), "OUT": str(tmp_path / "gpu.json"),
                "RUNS": str(tmp_path / "runs"), "DATA_DIR": str(MNIST), **env}
    full_env.pop("SMALL", None)
    return subprocess.run(["bash", str(SCRIPT), *args], env=full_env, capture_output=True, text=True, timeout=600,
                          check=False)


def test_unknown_argument_is_refused(tmp_path):
    result = run(tmp_path, "--fast")
    assert result.returncode == 2 and "unknown argument '--fast'" in result.stderr and "--smoke" in result.stderr
    assert not (tmp_path / "runs").exists()


def test_missing_data_is_refused_before_any_work(tmp_path):
    (tmp_path / "gpu.json").write_text("earlier\n")
    result = run(tmp_path, "--smoke", DATA_DIR=str(tmp_path / "nowhere"))
    assert result.returncode == 2 and "no MNIST folder" in result.stderr and "DATA_DIR" in result.stderr
    assert (tmp_path / "gpu.json").read_text() == "earlier\n" and not (tmp_path / "runs").exists()


def test_cuda_without_a_device_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    result = run(tmp_path, DEVICE="cuda", DATA_DIR=str(tmp_path))  # a folder: the device check comes next
    assert result.returncode == 2 and "no CUDA device" in result.stderr and "--smoke" in result.stderr


@pytest.mark.skipif(not MNIST.is_dir(), reason="no MNIST under ../shared/data/mnist")
def test_failed_step_leaves_earlier_results(tmp_path):
    (tmp_path / "gpu.json").write_text("earlier\n")
    result = run(tmp_path, "--smoke", SEED="not-a-seed")  # the CUDA tests pass, then train refuses the seed
    assert result.returncode != 0 and "training vade-mnist" in result.stderr
    assert (tmp_path / "gpu.json").read_text() == "earlier\n"
    assert not list(tmp_path.glob("gpu.json.tmp"))


@pytest.mark.slow
@pytest.mark.skipif(not MNIST.is_dir(), reason="no MNIST under ../shared/data/mnist")
def test_smoke_run_writes_every_row(tmp_path):  # ~70 s on one core
    result = run(tmp_path, "--smoke")
    assert result.returncode == 0, result.stderr[-3000:]
    payload = json.loads((tmp_path / "gpu.json").read_text())
    rows = {r["name"].split(" ")[0]: r for r in payload["rows"]}
    assert set(rows) == {"CUDA", "vade-mnist", "gmvae-mnist"}
    assert all(r["smoke"] and r["wall_s"] > 0 and r["table"] == "GPU run" for r in rows.values())
    assert re.fullmatch(r"\d+ tests, \d+ skipped, 0 failed", rows["CUDA"]["detail"])
    for name in ("vade-mnist", "gmvae-mnist"):
        assert 0 < rows[name]["acc"] <= 1 and rows[name]["epochs"] == 1 and rows[name]["init_acc"] is not None
    assert payload["total_wall_s"] >= sum(r["wall_s"] for r in rows.values())  # end to end, steps one by one
