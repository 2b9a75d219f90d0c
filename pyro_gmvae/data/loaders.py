"""The built-in data sets, read offline: ``digits`` (scikit-learn) and ``synthetic`` are built in, MNIST and
Fashion-MNIST are read from IDX files in ``data_dir`` (or torchvision's cache), SVHN from torchvision's
``.mat`` files, and ``file`` from a ``.npy`` / ``.npz``. Nothing is downloaded unless ``download=True``.
:data:`LOADERS` holds one loader per name; :func:`load_dataset` turns its arrays into a
:class:`~pyro_gmvae.data.Dataset`."""

from pathlib import Path

import numpy as np
import torch

from ..defaults import DATA_FIELDS
from ..errors import ConfigError, DataError, check_choice, check_positive
from .datasets import Dataset, _check_labels, _image_shape_of, _num_classes, validate_data
from .idx import read_idx
from .synthetic import make_arcs

SPLITS = ("train", "test", "all")

# IDX file stems, per split, for MNIST and Fashion-MNIST (images, labels).
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# Folder names torchvision uses under its root (DIR/<name>/raw/).
_TORCHVISION_DIRS = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}
_SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}


def default_cache_dir() -> Path:
    """Where torchvision data sets live when no ``data_dir`` is given (``~/.cache/pyro_gmvae``)."""
    return Path("~/.cache/pyro_gmvae").expanduser()


def _find_file(folders, stem):
    for folder in folders:
        for candidate in (folder / stem, folder / (stem + ".gz")):
            if candidate.is_file():
                return candidate
    return None


def _splits(split):
    return ("train", "test") if split == "all" else (split,)


def _read_mnist_like(name, folders, split):
    """Read (images uint8 (N,28,28), labels) from the first folder that has each file, or list what is missing."""
    found, missing = {}, []
    for s in _splits(split):
        for stem in _IDX_FILES[s]:
            path = _find_file(folders, stem)
            if path is None:
                missing.append(stem + "[.gz]")
            found[stem] = path
    if missing:
        return None, missing
    images, labels = [], []
    for s in _splits(split):
        img_stem, lab_stem = _IDX_FILES[s]
        img, lab = read_idx(found[img_stem]), read_idx(found[lab_stem])
        if img.ndim != 3 or lab.ndim != 1 or img.shape[0] != lab.shape[0]:
            raise DataError(
                f"{found[img_stem]} (shape {img.shape}) and {found[lab_stem]} (shape {lab.shape}) do not match; "
                f"use the original {name} image (N, H, W) and label (N,) files"
            )
        if images and img.shape[1:] != images[0].shape[1:]:
            first = found[_IDX_FILES[_splits(split)[0]][0]]
            raise DataError(
                f"{found[img_stem]} holds images of {img.shape[1]}x{img.shape[2]} pixels but {first} of "
                f"{images[0].shape[1]}x{images[0].shape[2]}; use the train and test files of one data set, "
                "or pass --split train / --split test"
            )
        images.append(img)
        labels.append(lab)
    return (
        np.concatenate(images) if len(images) > 1 else images[0],
        np.concatenate(labels) if len(labels) > 1 else labels[0],
    ), []


def _load_mnist_like(name, data_dir, split, download):
    tv_dir = _TORCHVISION_DIRS[name]
    if data_dir is not None:
        root = Path(data_dir).expanduser()
        if root.exists() and not root.is_dir():
            raise DataError(f"--data-dir {data_dir} is a file, not a folder; pass the folder that holds the "
                            f"{name} IDX files")
        if not root.is_dir() and not download:
            raise DataError(
                f"--data-dir {data_dir} does not exist; create it with the {name} IDX files "
                "or point --data-dir at the folder that holds them"
            )
    else:
        root = default_cache_dir()
    folders = [root, root / tv_dir / "raw"]
    arrays, missing = _read_mnist_like(name, folders, split)
    if arrays is not None:
        return arrays
    if download:
        _torchvision_download(name, root)
        arrays, missing = _read_mnist_like(name, folders, split)
        if arrays is not None:
            return arrays
    if data_dir is not None:
        raise DataError(
            f"--data-dir {data_dir} lacks the {name} files {', '.join(missing)} "
            f"(looked in {root} and {root / tv_dir / 'raw'}); copy them there or pass download=True (--download)"
        )
    raise DataError(
        f"{name} is not in {root}; pass download=True (--download) to fetch it, "
        "or --data-dir pointing at a folder with the IDX files"
    )


def _torchvision_download(name, root):
    import torchvision

    cls = torchvision.datasets.MNIST if name == "mnist" else torchvision.datasets.FashionMNIST
    root.mkdir(parents=True, exist_ok=True)
    try:
        for train in (True, False):
            cls(str(root), train=train, download=True)
    except Exception as exc:  # noqa: BLE001 - network errors come in many types
        raise DataError(
            f"downloading {name} into {root} failed ({exc}); "
            "check the network, or copy the IDX files there and use --data-dir"
        ) from None


def _load_svhn(data_dir, split, download):
    root = default_cache_dir() / "SVHN" if data_dir is None else Path(data_dir).expanduser()
    if data_dir is not None and root.exists() and not root.is_dir():
        raise DataError(f"--data-dir {data_dir} is a file, not a folder; pass the folder that holds the SVHN files")
    if data_dir is not None and not root.is_dir() and not download:
        raise DataError(
            f"--data-dir {data_dir} does not exist; create it with the SVHN files "
            f"({', '.join(_SVHN_FILES.values())}) or pass download=True (--download)"
        )
    has_files = all((root / _SVHN_FILES[s]).is_file() for s in _splits(split))
    if data_dir is not None and not download and not has_files and (root / "SVHN").is_dir():
        root = root / "SVHN"
    missing = [_SVHN_FILES[s] for s in _splits(split) if not (root / _SVHN_FILES[s]).is_file()]
    if missing and not download:
        raise DataError(
            f"SVHN files {', '.join(missing)} are not in {root}; pass download=True (--download) "
            "or --data-dir pointing at a folder that holds them"
        )
    import torchvision

    images, labels = [], []
    for s in _splits(split):
        try:
            ds = torchvision.datasets.SVHN(str(root), split=s, download=download)
        except Exception as exc:  # noqa: BLE001 - scipy / network / corrupt-file errors vary
            raise DataError(
                f"could not load SVHN {s} split from {root} ({exc}); "
                "delete the file and pass download=True (--download)"
            ) from None
        images.append(np.asarray(ds.data))  # (N, 3, 32, 32) uint8, labels with 10 -> 0 already
        labels.append(np.asarray(ds.labels).astype(np.int64))
    return np.concatenate(images), np.concatenate(labels)


def _native(a):
    """``a`` in the machine's byte order (torch reads no other; a big-endian .npy is converted)."""
    if a is not None and not a.dtype.isnative:
        return a.astype(a.dtype.newbyteorder("="))
    return a


_NPY_MAGIC, _ZIP_MAGIC = b"\x93NUMPY", b"PK"


def load_file_arrays(data_path, *, labels=True, flag="--data-path"):
    """``(x, y)`` numpy arrays of a ``.npy`` (``y`` None) or ``.npz`` (``x``, optional ``y``; read only with
    ``labels``) file, in the machine's byte order; ``flag`` names the option in messages."""
    if data_path is None:
        raise DataError("dataset 'file' needs data_path; pass data_path= (CLI --data-path) to a .npy or .npz file")
    path = Path(data_path).expanduser()
    if path.is_dir():
        raise DataError(f"{flag} {data_path} is a folder; pass the path of a .npy or .npz file")
    if path.exists() and not path.is_file():
        raise DataError(f"{flag} {data_path} is not a regular file (a FIFO, a device...); pass a .npy or .npz file")
    if not path.is_file():
        raise DataError(f"{flag} {data_path} does not exist; pass the path of a .npy or .npz file")
    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as exc:
        raise DataError(f"cannot read {flag} {path} ({exc.strerror}); make it readable") from None
    if not magic.startswith((_NPY_MAGIC, _ZIP_MAGIC)):
        kind = "text (a CSV?)" if magic and all(32 <= b < 127 or b in (9, 10, 13) for b in magic) else "another format"
        raise DataError(f"{path} is not a .npy or .npz file (it holds {kind}); convert it, e.g. with "
                        "np.save('data.npy', np.loadtxt(FILE, delimiter=',', dtype=np.float32))")
    try:
        loaded = np.load(path, allow_pickle=False)
    except Exception as exc:  # noqa: BLE001 - numpy raises many types for a bad file
        raise DataError(
            f"could not read {path} as a numpy file ({exc}); "
            "save it with np.save / np.savez (numeric arrays, no pickles)"
        ) from None
    if isinstance(loaded, np.ndarray):
        return _checked_kinds(path, _native(loaded), None)
    with loaded:
        keys = list(loaded.files)
        if "x" not in keys:
            raise DataError(
                f"{path} has no array 'x' (keys found: {', '.join(keys) or 'none'}); "
                "save it with np.savez(path, x=data, y=labels)"
            )
        try:
            x = loaded["x"]
            y = loaded["y"] if labels and "y" in keys else None
        except Exception as exc:  # noqa: BLE001 - an object array (pickles refused), a corrupt member
            raise DataError(
                f"could not read the arrays of {path} ({exc}); save numeric arrays with "
                "np.savez(path, x=data.astype(np.float32), y=labels)"
            ) from None
    return _checked_kinds(path, _native(x), _native(y))


#: numpy's dtype kinds, in words, for the messages about a file's arrays.
_KINDS = {"b": "booleans", "c": "complex numbers", "U": "strings", "S": "bytes", "O": "objects", "M": "dates",
          "m": "time spans", "V": "records"}


def _checked_kinds(path, x, y):
    """Refuse a file whose data are not real numbers, or whose labels are not integers, with the fix for the
    file (the arrays are the user's file, not Python objects of theirs)."""
    if x.dtype.kind not in "iuf":
        raise DataError(f"the data x in {path} are {_KINDS.get(x.dtype.kind, x.dtype.kind)} (dtype {x.dtype}); "
                        f"save real numbers instead, e.g. np.save(FILE, x.astype(np.float32))")
    if y is not None and y.dtype.kind not in "iubf":  # float labels are checked to be whole later
        raise DataError(f"the labels y in {path} are {_KINDS.get(y.dtype.kind, y.dtype.kind)} (dtype {y.dtype}); "
                        "labels are integers 0..C-1: save them with "
                        "np.savez(FILE, x=x, y=np.unique(y, return_inverse=True)[1])")
    return x, y


def _subsample_index(n, num_datapoints, seed):
    if num_datapoints is None:
        return None
    check_positive("num_datapoints", num_datapoints, integer=True)
    if num_datapoints > n:
        raise ConfigError(
            f"num_datapoints={num_datapoints} exceeds the {n} data points available; pass at most {n} or None"
        )
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n, generator=g)[: int(num_datapoints)].numpy()


def _to_tensors(x, y, *, device, dtype, scale=None):
    """numpy -> tensors on ``device``; uint8 pixels are moved first (4x smaller) and then scaled."""
    x = np.ascontiguousarray(x.reshape(x.shape[0], -1))
    t = torch.from_numpy(x).to(device=device)
    t = t.to(dtype)
    if scale is not None:
        t.mul_(scale)
    labels = None if y is None else torch.from_numpy(np.asarray(y).astype(np.int64)).to(device)
    return t, labels


#: The built-in data sets by name, in the order the help lists them: ``loader(split=, data_dir=, data_path=,
#: download=, seed=, num_datapoints=) -> (x, y, image_shape, likelihood, scale)`` with numpy ``x`` and ``y``.
LOADERS = {}


def _loader(name):
    def register(fn):
        LOADERS[name] = fn
        return fn
    return register


@_loader("digits")
def _digits(**unused):
    from sklearn.datasets import load_digits  # scikit-learn is imported only for this data set

    bunch = load_digits()
    return bunch.data, bunch.target, (1, 8, 8), "bernoulli", 1.0 / 16.0


@_loader("synthetic")
def _synthetic(seed, num_datapoints, **unused):
    n = 5000 if num_datapoints is None else num_datapoints
    check_positive("num_datapoints", n, integer=True)
    x, y = make_arcs(num_datapoints=int(n), seed=seed)
    return x, y, None, "normal", None


@_loader("mnist")
def _mnist(data_dir, split, download, name="mnist", **unused):
    x, y = _load_mnist_like(name, data_dir, split, download)
    return x, y, (1,) + tuple(int(s) for s in x.shape[1:]), "bernoulli", 1.0 / 255.0


@_loader("fashion-mnist")
def _fashion_mnist(**kw):
    return _mnist(name="fashion-mnist", **kw)


@_loader("svhn")
def _svhn(data_dir, split, download, **unused):
    x, y = _load_svhn(data_dir, split, download)
    return x, y, tuple(int(s) for s in x.shape[1:]), "bernoulli", 1.0 / 255.0


@_loader("file")
def _file(data_path, **unused):
    x, y = load_file_arrays(data_path)
    image_shape = _image_shape_of(x.shape) if x.ndim > 2 else None
    if x.ndim > 2:
        x = x.reshape(x.shape[0], -1)
    validate_data(x)
    if y is not None:
        _check_labels(y, x.shape[0], "cpu")
    return x, y, image_shape, None, None  # the likelihood from the values, after the subsample


DATASETS = tuple(LOADERS)
#: The data sets with a standard train/test split; the others accept only ``split="all"``.
_SPLIT_DATASETS = ("mnist", "fashion-mnist", "svhn")


def load_dataset(
    name,
    *,
    data_dir=None,
    data_path=None,
    split="all",
    device="cpu",
    dtype=None,
    seed=0,
    num_datapoints=None,
    download=False,
) -> Dataset:
    """Load a data set by name (one of :data:`DATASETS`) as a :class:`Dataset` on ``device``.

    ``split`` is ``'train'``, ``'test'`` or ``'all'`` (train then test) for mnist,
    fashion-mnist and svhn; the other data sets have no standard split and accept only ``'all'``.
    ``num_datapoints`` keeps the first N points of a permutation seeded with ``seed``
    (for ``synthetic`` it is the number of points generated, default 5000).
    """
    check_choice("dataset", name, DATASETS)
    check_choice("split", split, SPLITS)
    if split != "all" and name not in _SPLIT_DATASETS:
        raise ConfigError(f"dataset {name!r} has no train/test split; use split='all'")
    device = torch.device(device)
    dtype = torch.get_default_dtype() if dtype is None else dtype
    if not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise ConfigError(f"dtype must be a floating torch.dtype, got {dtype!r}; pass e.g. torch.float32")

    x, y, image_shape, likelihood, scale = LOADERS[name](
        split=split, data_dir=data_dir, data_path=data_path, download=download, seed=seed,
        num_datapoints=num_datapoints)
    if name != "synthetic":  # synthetic generates num_datapoints points instead
        idx = _subsample_index(x.shape[0], num_datapoints, seed)
        if idx is not None:
            x, y = x[idx], (None if y is None else y[idx])
    if name == "file":
        likelihood = "bernoulli" if x.min() >= 0 and x.max() <= 1 else "normal"
        xt = torch.from_numpy(np.ascontiguousarray(x)).to(device=device, dtype=dtype)
        yt = None if y is None else _check_labels(y, x.shape[0], device)
        return Dataset(name, xt, yt, image_shape, likelihood, _num_classes(y))
    xt, yt = _to_tensors(x, y, device=device, dtype=dtype, scale=scale)
    return Dataset(name, xt, yt, image_shape, likelihood, _num_classes(y))


def load_data(data_kw, device="cpu", download=False):
    """The data set of a data section (``config.json``'s ``"data"``, or the CLI's data flags)."""
    # a hand-edited config.json may hold anything: refuse what load_dataset would not understand
    if not isinstance(data_kw, dict):
        raise ConfigError(f"the data settings must be a dict of {', '.join(DATA_FIELDS)}, got {data_kw!r}; "
                          "fix the data section of config.json")
    kw = {k: v for k, v in data_kw.items() if k != "fingerprint"}  # the fingerprint checks the data, not loads
    unknown = sorted(set(kw) - set(DATA_FIELDS))
    if unknown:
        raise ConfigError(f"unknown data settings {unknown}; the data section of config.json takes "
                          f"{', '.join(DATA_FIELDS)}")
    for key in ("dataset", "data_dir", "data_path", "split"):
        if kw.get(key) is not None and not isinstance(kw[key], str):
            raise ConfigError(f"the data setting {key} must be a string, got {kw[key]!r}; fix the data section "
                              "of config.json")
    name = kw.pop("dataset", "digits")
    if name not in DATASETS and "fingerprint" in data_kw:  # a run fitted in Python on arrays it does not store
        raise DataError(f"the run was fitted in Python on in-memory data ({name!r}), which its folder does not hold, "
                        "so the command line cannot load them (to resume, evaluate or plot it); use the run in Python "
                        "(GMVAEClusterer.load(RUN).score(X), .fit(X) to train again), or train from the command line "
                        "on a file with --dataset file --data-path FILE")
    return load_dataset(name, device=device, download=download, **kw)
