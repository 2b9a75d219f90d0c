"""Reader (and a small writer, for tests and tools) of the IDX format used by MNIST.

An IDX file starts with the magic number ``0x00 0x00 TYPE NDIM``, then ``NDIM``
big-endian uint32 sizes, then the data in big-endian order.  Files may be gzip
compressed (detected from their first bytes, not from the file name).
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..errors import DataError

__all__ = ["IDX_DTYPES", "read_idx", "write_idx"]

#: IDX type code -> numpy dtype (big-endian where it matters).
IDX_DTYPES = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in IDX_DTYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"


def _read_bytes(path):
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as exc:
            raise DataError(
                f"IDX file {path} is a corrupt or truncated gzip file ({exc}); "
                "download it again or decompress a good copy"
            ) from None
    return raw


def read_idx(path) -> np.ndarray:
    """Read an IDX file (plain or gzip) into a numpy array of native byte order.

    Raises :class:`DataError` naming the file when it is missing, has a wrong
    magic number, or its size does not match its header.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise DataError(f"IDX file {path} does not exist; check the path or the --data-dir folder")
    raw = _read_bytes(path)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in IDX_DTYPES:
        raise DataError(
            f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); "
            "use the original MNIST-format files (e.g. train-images-idx3-ubyte.gz)"
        )
    dtype = IDX_DTYPES[raw[2]]
    ndim = raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(
            f"IDX file {path} is truncated (header needs {header} bytes, file has {len(raw)}); download it again"
        )
    shape = tuple(int(s) for s in np.frombuffer(raw, dtype=">u4", count=ndim, offset=4))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        what = "truncated" if len(raw) < expected else "longer than its header says"
        raise DataError(
            f"IDX file {path} is {what} (expected {expected} bytes for shape {shape}, "
            f"got {len(raw)}); download it again"
        )
    data = np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape)
    # Copy: native byte order, and writable (np.frombuffer over bytes is read-only).
    return data.astype(dtype.newbyteorder("=") if dtype.itemsize > 1 else dtype, copy=True)


def write_idx(path, array, *, compress=None) -> None:
    """Write ``array`` as an IDX file; gzip compressed when ``compress`` (default: name ends in .gz)."""
    path = os.fspath(path)
    array = np.asarray(array)
    key = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if key not in _CODES:
        raise DataError(
            f"cannot write dtype {array.dtype} to IDX; convert to one of uint8, int8, int16, int32, float32, float64"
        )
    code = _CODES[key]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    body = np.ascontiguousarray(array, dtype=IDX_DTYPES[code]).tobytes()
    if compress is None:
        compress = path.endswith(".gz")
    payload = header + body
    if compress:
        payload = gzip.compress(payload)
    with open(path, "wb") as f:
        f.write(payload)
