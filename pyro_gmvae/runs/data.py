"""The data a run was trained on: its fingerprint in ``config.json`` (``--resume`` refuses other data,
``evaluate`` warns), and loading it again for a run."""

import hashlib

import torch

from ..data import DATASETS, load_data
from ..errors import CheckpointError, DataError
from .checkpoint import read_config


def data_fingerprint(dataset):
    """``{"shape", "dtype", "sha256", "range"}`` of a :class:`~pyro_gmvae.data.Dataset`: its values and labels,
    whatever the device. Recorded in config.json, so that ``--resume`` can tell other data."""
    x = dataset.x.detach().cpu().contiguous()
    digest = hashlib.sha256(x.reshape(-1).view(torch.uint8).numpy().tobytes())
    if dataset.y is not None:
        digest.update(dataset.y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    finite = x.numel() > 0 and bool(torch.isfinite(x).all())
    return {"shape": list(x.shape), "dtype": str(x.dtype).replace("torch.", ""), "sha256": digest.hexdigest(),
            "range": [float(x.min()), float(x.max())] if finite else None}


#: The keys that tell one data set from another (``range`` only describes it, and older runs lack it).
IDENTITY = ("shape", "dtype", "sha256")


def same_data(saved, mine):
    """Whether two fingerprints describe the same data (shape, dtype and the SHA-256 of the values)."""
    return all(saved.get(k) == mine.get(k) for k in IDENTITY)


def trained_range(run_dir):
    """``(min, max)`` of the values the run was trained on, or None (a run of an older version)."""
    value = (saved_fingerprint(run_dir) or {}).get("range")
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, (int, float)) for v in value):
        return float(value[0]), float(value[1])
    return None


def describe_fingerprint(fingerprint):
    return f"shape {tuple(fingerprint.get('shape', ()))}, {fingerprint.get('dtype')}, " \
           f"sha256 {str(fingerprint.get('sha256'))[:12]}"


def saved_fingerprint(run_dir):
    """The fingerprint of the run's training data in its config.json, or None (a run of an older version)."""
    _, _, data = read_config(run_dir)
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    return fingerprint if isinstance(fingerprint, dict) else None


def check_data_fingerprint(run_dir, dataset, log=print):
    """Raise :class:`CheckpointError` unless ``dataset`` is the data the run was trained on."""
    saved = saved_fingerprint(run_dir)
    if saved is None:
        log(f"note: {run_dir} records no fingerprint of its training data (written by an older pyro-gmvae), so "
            "whether the data are the same cannot be checked")
        return
    mine = data_fingerprint(dataset)
    if not same_data(saved, mine):
        raise CheckpointError(f"the data differ from those the run in {run_dir} was trained on (then: "
                              f"{describe_fingerprint(saved)}; now: {describe_fingerprint(mine)}); restore the original data files "
                              "and the data section of config.json, or start a new run with --out")


def load_run_data(run_dir, split=None, device="cpu"):
    """The data set a run was trained on (``split`` overrides the training split)."""
    _, _, data_spec = read_config(run_dir)
    spec = dict(data_spec)
    if spec.get("dataset", "digits") not in DATASETS:  # fitted in Python on arrays, which a run does not store
        raise DataError(f"the run in {run_dir} was fitted on in-memory data ({spec.get('dataset')!r}), which the "
                        "run folder does not hold; score new data with pyro-gmvae predict RUN --data FILE, or in "
                        "Python with GMVAEClusterer.load(RUN).score(X) / estimate_marginal_likelihood")
    if split is not None:
        spec["split"] = split
    return load_data(spec, device)
