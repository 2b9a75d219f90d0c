"""Data files read as they are (issue 23): a big-endian array is converted, a 0-d one reported with its
shape, a CSV named as text, float64 values past float32's range counted as such, and labels read only
where they are used."""

import numpy as np
import pytest
import torch

from pyro_gmvae import cli
from pyro_gmvae.data import from_tensor, load_dataset, load_file_arrays
from pyro_gmvae.errors import DataError


def test_big_endian_arrays_are_read_in_native_order(tmp_path):
    x = np.random.default_rng(0).normal(size=(6, 3))
    np.save(tmp_path / "big.npy", x.astype(">f8"))
    np.savez(tmp_path / "big.npz", x=x.astype(">f4"), y=np.arange(6).astype(">i8"))
    assert torch.equal(load_dataset("file", data_path=tmp_path / "big.npy").x, torch.tensor(x, dtype=torch.float32))
    both = load_dataset("file", data_path=tmp_path / "big.npz")
    assert both.y.tolist() == list(range(6)) and torch.equal(both.x, torch.tensor(x, dtype=torch.float32))
    assert torch.equal(from_tensor(x.astype(">f8")).x, torch.from_numpy(x))  # GMVAEClusterer.fit's path


def test_train_reads_a_big_endian_file(tmp_path):
    x = np.random.default_rng(0).normal(size=(60, 3)).astype(">f4")
    np.save(tmp_path / "big.npy", x)
    assert cli.main(["train", "--dataset", "file", "--data-path", str(tmp_path / "big.npy"), "--network", "toy",
                     "--num-clusters", "2", "--epochs", "1", "--pretrain-epochs", "0", "--batch-size", "30",
                     "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]) == 0


@pytest.mark.parametrize("save, match", [
    (lambda p: np.save(p / "f.npy", np.float32(3.0)), r"got shape \(\)"),
    (lambda p: (p / "f.npy").write_text("1.0,2.0\n3.0,4.0\n"),
     r"is not a \.npy or \.npz file \(it holds text \(a CSV\?\)\)"),
    (lambda p: (p / "f.npy").write_bytes(b"\x00\x01\x02\xff\xfe\x80"),
     r"not a \.npy or \.npz file \(it holds another format\)"),
    (lambda p: np.save(p / "f.npy", np.full((30, 20), 1e300)), "600 values out of float32 range"),
    (lambda p: np.save(p / "f.npy", np.concatenate([np.full((3, 2), 1e300), np.full((3, 2), np.nan)])),
     "contains 6 NaN/Inf values"),
    (lambda p: (p / "f.npy").mkdir(), "--data-path .* is a folder"),
])
def test_a_bad_file_is_named_for_what_it_is(save, match, tmp_path):
    save(tmp_path)
    with pytest.raises(DataError, match=match):
        load_dataset("file", data_path=tmp_path / "f.npy")


def test_labels_are_read_only_when_used(tmp_path):
    x = np.zeros((4, 2), np.float32)
    np.savez(tmp_path / "f.npz", x=x, y=np.array([[1, 2], [3]], dtype=object))
    assert load_file_arrays(tmp_path / "f.npz", labels=False)[1] is None
    with pytest.raises(DataError, match="could not read the arrays"):
        load_dataset("file", data_path=tmp_path / "f.npz")
    np.savez(tmp_path / "g.npz", x=x, y=np.arange(3))
    with pytest.raises(DataError, match=r"y must have shape \(4,\)"):
        load_dataset("file", data_path=tmp_path / "g.npz")
