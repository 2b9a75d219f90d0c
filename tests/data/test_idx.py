"""IDX reading: tiny files written to tmp_path, plain and gzip, good and corrupt."""

import gzip

import numpy as np
import pytest

from pyro_gmvae.data import read_idx, write_idx
from pyro_gmvae.errors import DataError


def _raw_idx(array, code=0x08):
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + array.tobytes()


@pytest.mark.parametrize("gz", [False, True])
def test_read_images_and_labels_by_hand(tmp_path, gz):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(7, 4, 3), dtype=np.uint8)
    labels = rng.integers(0, 10, size=7, dtype=np.uint8)
    for stem, arr in (("imgs-idx3-ubyte", images), ("labels-idx1-ubyte", labels)):
        raw = _raw_idx(arr)
        path = tmp_path / (stem + (".gz" if gz else ""))
        path.write_bytes(gzip.compress(raw) if gz else raw)
        out = read_idx(path)
        assert out.shape == arr.shape and out.dtype == np.uint8
        np.testing.assert_array_equal(out, arr)
        out[0] = 0  # writable


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
@pytest.mark.parametrize("name", ["a.idx", "a.idx.gz"])
def test_write_read_round_trip(tmp_path, dtype, name):
    arr = (
        (np.arange(24).reshape(2, 3, 4) - 5).astype(dtype)
        if dtype != np.uint8
        else np.arange(24, dtype=dtype).reshape(2, 3, 4)
    )
    write_idx(tmp_path / name, arr)
    out = read_idx(tmp_path / name)
    assert out.dtype == np.dtype(dtype) and out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, arr)


def test_big_endian_sizes(tmp_path):
    arr = np.zeros((300, 2), dtype=np.uint8)  # 300 needs two bytes: checks the byte order
    (tmp_path / "x").write_bytes(_raw_idx(arr))
    assert read_idx(tmp_path / "x").shape == (300, 2)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file_names_the_file(tmp_path, gz):
    raw = _raw_idx(np.ones((5, 4, 4), dtype=np.uint8))[:-10]
    path = tmp_path / ("short-idx3-ubyte" + (".gz" if gz else ""))
    path.write_bytes(gzip.compress(raw) if gz else raw)
    with pytest.raises(DataError, match="short-idx3-ubyte.*truncated"):
        read_idx(path)


def test_truncated_gzip_stream(tmp_path):
    data = gzip.compress(_raw_idx(np.arange(200, dtype=np.uint8).reshape(2, 100)))
    path = tmp_path / "cut.gz"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="cut.gz"):
        read_idx(path)


def test_truncated_header(tmp_path):
    path = tmp_path / "hdr"
    path.write_bytes(bytes([0, 0, 8, 3, 0, 0]))
    with pytest.raises(DataError, match="hdr.*truncated"):
        read_idx(path)


def test_too_long_file(tmp_path):
    path = tmp_path / "long"
    path.write_bytes(_raw_idx(np.ones((2, 2), dtype=np.uint8)) + b"\x00")
    with pytest.raises(DataError, match="long.*longer"):
        read_idx(path)


@pytest.mark.parametrize("head", [b"\x01\x00\x08\x01", b"\x00\x00\x07\x01", b"PK\x03\x04", b""])
def test_wrong_magic_names_the_file(tmp_path, head):
    path = tmp_path / "bogus-idx1-ubyte"
    path.write_bytes(head + b"\x00\x00\x00\x02ab")
    with pytest.raises(DataError, match="bogus-idx1-ubyte.*magic") as err:
        read_idx(path)
    assert "\n" not in str(err.value)


def test_missing_file(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_idx(tmp_path / "nope")
