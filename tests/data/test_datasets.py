"""Data sets: built-ins, MNIST from tiny IDX files, numpy files, user tensors, validation errors."""

import gzip

import numpy as np
import pytest
import torch

from pyro_gmvae.data import (
    DATASETS,
    Dataset,
    from_tensor,
    load_dataset,
    make_arcs,
    validate_data,
    write_idx,
)
from pyro_gmvae.errors import ConfigError, DataError

# ----------------------------------------------------------------------------- tiny MNIST

N_TRAIN, N_TEST = 12, 5


def _write_mnist(folder, *, gz=True, seed=0):
    """Write tiny MNIST-format files; return the arrays written."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arrays = {}
    for prefix, n in (("train", N_TRAIN), ("t10k", N_TEST)):
        img = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        img[0, 0, 0], img[0, 0, 1] = 0, 255
        lab = (np.arange(n) % 10).astype(np.uint8)
        suffix = ".gz" if gz else ""
        write_idx(folder / f"{prefix}-images-idx3-ubyte{suffix}", img)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte{suffix}", lab)
        arrays[prefix] = (img, lab)
    return arrays


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("split,n", [("train", N_TRAIN), ("test", N_TEST), ("all", N_TRAIN + N_TEST)])
def test_mnist_from_data_dir(tmp_path, gz, split, n):
    arrays = _write_mnist(tmp_path, gz=gz)
    ds = load_dataset("mnist", data_dir=tmp_path, split=split)
    assert isinstance(ds, Dataset)
    assert ds.x.shape == (n, 784) and ds.data_dim == 784 and ds.num_datapoints == n
    assert ds.x.dtype == torch.get_default_dtype() and ds.y.dtype == torch.int64
    assert ds.image_shape == (1, 28, 28) and ds.likelihood == "bernoulli"
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    parts = {"train": ["train"], "test": ["t10k"], "all": ["train", "t10k"]}[split]
    img = np.concatenate([arrays[p][0] for p in parts]).reshape(n, -1)
    lab = np.concatenate([arrays[p][1] for p in parts])
    np.testing.assert_allclose(ds.x.numpy(), img / 255.0, rtol=1e-6)
    np.testing.assert_array_equal(ds.y.numpy(), lab)
    assert ds.num_classes == len(np.unique(lab))


def test_mnist_torchvision_layout_and_fashion(tmp_path):
    _write_mnist(tmp_path / "FashionMNIST" / "raw", gz=False)
    ds = load_dataset("fashion-mnist", data_dir=tmp_path, split="test")
    assert ds.x.shape == (N_TEST, 784) and ds.name == "fashion-mnist"
    _write_mnist(tmp_path / "MNIST" / "raw", gz=True)
    assert load_dataset("mnist", data_dir=tmp_path).num_datapoints == N_TRAIN + N_TEST


def test_mnist_subsample_is_seeded(tmp_path):
    _write_mnist(tmp_path)
    full = load_dataset("mnist", data_dir=tmp_path)
    a = load_dataset("mnist", data_dir=tmp_path, num_datapoints=6, seed=3)
    b = load_dataset("mnist", data_dir=tmp_path, num_datapoints=6, seed=3)
    c = load_dataset("mnist", data_dir=tmp_path, num_datapoints=6, seed=4)
    assert a.x.shape == (6, 784)
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    perm = torch.randperm(N_TRAIN + N_TEST, generator=torch.Generator().manual_seed(3))[:6]
    assert torch.equal(a.x, full.x[perm]) and torch.equal(a.y, full.y[perm])
    with pytest.raises(ConfigError, match="at most"):
        load_dataset("mnist", data_dir=tmp_path, num_datapoints=1000)


def test_mnist_dtype(tmp_path):
    _write_mnist(tmp_path)
    assert load_dataset("mnist", data_dir=tmp_path, dtype=torch.float64).x.dtype == torch.float64


def test_mnist_missing_dir(tmp_path):
    with pytest.raises(DataError, match="--data-dir .*nowhere does not exist"):
        load_dataset("mnist", data_dir=tmp_path / "nowhere")


def test_mnist_missing_files_listed(tmp_path):
    _write_mnist(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    assert load_dataset("mnist", data_dir=tmp_path, split="train").num_datapoints == N_TRAIN
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte") as err:
        load_dataset("mnist", data_dir=tmp_path, split="all")
    assert "train-images" not in str(err.value) and "download=True" in str(err.value)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="train-images-idx3-ubyte.*train-labels-idx1-ubyte"):
        load_dataset("mnist", data_dir=tmp_path / "empty")


def test_mnist_corrupt_file_named(tmp_path):
    _write_mnist(tmp_path)
    path = tmp_path / "train-images-idx3-ubyte.gz"
    raw = gzip.decompress(path.read_bytes())
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(DataError, match="train-images-idx3-ubyte.gz.*truncated"):
        load_dataset("mnist", data_dir=tmp_path)


def test_mnist_mismatched_counts(tmp_path):
    _write_mnist(tmp_path)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DataError, match="do not match"):
        load_dataset("mnist", data_dir=tmp_path, split="train")


def test_no_data_dir_no_download_explains(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))  # an empty cache
    with pytest.raises(DataError, match="download=True.*--data-dir"):
        load_dataset("mnist")
    with pytest.raises(DataError, match="download=True"):
        load_dataset("svhn")


def test_svhn_missing_files(tmp_path):
    with pytest.raises(DataError, match="test_32x32.mat"):
        load_dataset("svhn", data_dir=tmp_path, split="test")


# ----------------------------------------------------------------------------- built-ins


def test_digits():
    ds = load_dataset("digits")
    assert ds.x.shape == (1797, 64) and ds.y.shape == (1797,)
    assert float(ds.x.min()) == 0.0 and float(ds.x.max()) == 1.0
    assert ds.num_classes == 10 and ds.image_shape == (1, 8, 8) and ds.likelihood == "bernoulli"
    assert load_dataset("digits", num_datapoints=100).x.shape == (100, 64)


def test_synthetic_seeded_shape():
    a, b, c = (load_dataset("synthetic", seed=s) for s in (0, 0, 1))
    assert a.x.shape == (5000, 2) and a.likelihood == "normal" and a.num_classes == 5 and a.image_shape is None
    assert torch.equal(a.x, b.x) and torch.equal(a.y, b.y) and not torch.equal(a.x, c.x)
    assert load_dataset("synthetic", num_datapoints=123).x.shape == (123, 2)
    x, y = make_arcs(1001, num_arcs=4, seed=2)
    assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (1001, 2)
    assert np.bincount(y).max() - np.bincount(y).min() <= 1
    assert np.all(np.abs(x.mean(0)) < 0.1) and np.all(np.abs(x.std(0) - 1) < 0.2)


@pytest.mark.parametrize("num_arcs", [3, 5])
def test_synthetic_arcs_are_separated(num_arcs):
    noise = 0.05
    x, y = make_arcs(2000, num_arcs=num_arcs, noise=noise, seed=0)
    x, y = torch.from_numpy(x), torch.from_numpy(y)
    d = torch.cdist(x, x)
    different = y[:, None] != y[None, :]
    # The closest two points of different arcs are far apart compared with the noise ...
    assert float(d[different].min()) > 10 * noise
    # ... and each arc is connected at a much smaller scale: single linkage recovers the labels.
    from sklearn.cluster import AgglomerativeClustering
    from sklearn.metrics import adjusted_rand_score

    pred = AgglomerativeClustering(n_clusters=num_arcs, linkage="single").fit_predict(x.numpy())
    assert adjusted_rand_score(y.numpy(), pred) == 1.0


# ----------------------------------------------------------------------------- numpy files


def test_npy_round_trip(tmp_path):
    x = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset("file", data_path=tmp_path / "x.npy")
    assert ds.y is None and ds.num_classes is None and ds.likelihood == "normal" and ds.image_shape is None
    np.testing.assert_allclose(ds.x.numpy(), x)


def test_npz_round_trip_images(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.uniform(size=(10, 2, 4, 5))
    y = rng.integers(0, 3, size=10)
    np.savez(tmp_path / "d.npz", x=x, y=y)
    ds = load_dataset("file", data_path=str(tmp_path / "d.npz"))
    assert ds.x.shape == (10, 40) and ds.image_shape == (2, 4, 5) and ds.likelihood == "bernoulli"
    np.testing.assert_allclose(ds.x.numpy(), x.reshape(10, -1), rtol=1e-6)
    np.testing.assert_array_equal(ds.y.numpy(), y)
    assert ds.num_classes == len(np.unique(y))
    np.save(tmp_path / "g.npy", rng.uniform(size=(6, 7, 8)))
    assert load_dataset("file", data_path=tmp_path / "g.npy").image_shape == (1, 7, 8)


def test_file_errors(tmp_path):
    with pytest.raises(DataError, match="data_path"):
        load_dataset("file")
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("file", data_path=tmp_path / "missing.npy")
    np.savez(tmp_path / "w.npz", data=np.zeros((2, 2)), labels=np.zeros(2))
    with pytest.raises(DataError, match="keys found: data, labels"):
        load_dataset("file", data_path=tmp_path / "w.npz")
    np.savez(tmp_path / "nan.npz", x=np.array([[0.0, np.nan]]))
    with pytest.raises(DataError, match="1 NaN/Inf"):
        load_dataset("file", data_path=tmp_path / "nan.npz")
    (tmp_path / "junk.npy").write_bytes(b"not numpy")
    with pytest.raises(DataError, match="junk.npy"):
        load_dataset("file", data_path=tmp_path / "junk.npy")


# ----------------------------------------------------------------------------- choices, user tensors


def test_bad_name_and_split():
    with pytest.raises(ConfigError, match="unknown dataset 'cifar'.*digits"):
        load_dataset("cifar")
    with pytest.raises(ConfigError, match="unknown split 'valid'"):
        load_dataset("digits", split="valid")
    with pytest.raises(ConfigError, match="no train/test split"):
        load_dataset("digits", split="train")
    assert set(DATASETS) == {"digits", "synthetic", "mnist", "fashion-mnist", "svhn", "file"}


def test_device_meta():
    ds = load_dataset("synthetic", num_datapoints=10, device="meta")
    assert ds.x.device.type == "meta" and ds.y.device.type == "meta"


def test_from_tensor():
    x = torch.rand(8, 1, 3, 3)
    ds = from_tensor(x, torch.tensor([0, 1] * 4), name="mine")
    assert ds.name == "mine" and ds.x.shape == (8, 9) and ds.image_shape == (1, 3, 3)
    assert ds.likelihood == "bernoulli" and ds.num_classes == 2 and ds.y.dtype == torch.int64
    ds = from_tensor(np.arange(6).reshape(3, 2))
    assert ds.likelihood == "normal" and ds.x.dtype == torch.get_default_dtype() and ds.y is None
    assert from_tensor(torch.rand(4, 2), likelihood="normal").likelihood == "normal"
    with pytest.raises(DataError, match=r"y must have shape \(4,\)"):
        from_tensor(torch.rand(4, 2), torch.zeros(3))
    with pytest.raises(DataError, match="rescale to"):
        from_tensor(torch.randn(4, 2) + 5, likelihood="bernoulli")
    with pytest.raises(ConfigError, match="likelihood"):
        from_tensor(torch.rand(4, 2), likelihood="poisson")


@pytest.mark.parametrize(
    "x,likelihood,message",
    [
        (
            torch.tensor([[0.0, float("nan")], [float("nan"), 1.0]]),
            None,
            "contains 2 NaN/Inf values; remove or impute them",
        ),
        (np.array([[0.0, np.inf]]), "normal", "contains 1 NaN/Inf values; remove or impute them"),
        (torch.zeros(0, 3), None, "x is empty"),
        (torch.zeros(2, 3, 4), None, r"must be 2-D \(N, D\).*shape \(2, 3, 4\)"),
        (torch.zeros(5), None, r"must be 2-D.*reshape\(-1, 1\)"),
        (torch.tensor([[0.5, 1.5]]), "bernoulli", r"outside \[0, 1\].*rescale to \[0, 1\] or use likelihood='normal'"),
        (torch.tensor([[-0.1, 0.5]]), "bernoulli", "rescale to"),
        ([[0.0, 1.0]], None, "torch.Tensor or numpy array"),
    ],
)
def test_validate_data_errors(x, likelihood, message):
    with pytest.raises(DataError, match=message) as err:
        validate_data(x, likelihood=likelihood)
    assert "\n" not in str(err.value) and ";" in str(err.value)


def test_validate_data_accepts_good_data():
    validate_data(torch.rand(3, 2), likelihood="bernoulli")
    validate_data(np.random.default_rng(0).normal(size=(3, 2)), likelihood="normal")
    validate_data(torch.arange(6).reshape(3, 2))
