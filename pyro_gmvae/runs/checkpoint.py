"""The file formats of a run folder, in one place: ``config.json`` (the configs, the data, the plugins),
``metrics.jsonl`` (one strict JSON row per epoch), ``checkpoint.pt`` and ``pretrained.pt``."""

import hashlib
import json
import pickle
from pathlib import Path

import numpy as np
import torch

from ..config import ModelConfig, TrainConfig
from ..errors import CheckpointError, ConfigError
from ..plugins import check_recorded_plugins, import_plugins, run_plugins
from .lock import LOCK, live_owner
from .storage import atomic_write_bytes, finite_or_none

CONFIG, METRICS, CHECKPOINT, PRETRAINED = "config.json", "metrics.jsonl", "checkpoint.pt", "pretrained.pt"
FORMAT = "pyro-gmvae-checkpoint-1"

#: What ``torch.load(weights_only=True)`` may build besides tensors, dicts, lists and numbers: numpy's random
#: state travels in ``checkpoint.pt`` as an array of uint32. A checkpoint is read with nothing else, so that a
#: run folder from someone else cannot run code when it is opened (pickle would call anything it names).
SAFE_GLOBALS = (np._core.multiarray._reconstruct, np.ndarray, np.dtype, np.dtypes.UInt32DType)


def _check_regular(path):
    """Refuse a run file that exists but is no regular file: reading a FIFO would wait forever, a device
    would read garbage (a run folder from someone else may hold anything)."""
    if path.exists() and not path.is_file():
        raise CheckpointError(f"{path} is not a regular file (a FIFO, a device or a folder), so it is not a run's "
                              "file; remove it, or pass a folder written by pyro-gmvae train")


def save_checkpoint(run_dir, state):
    atomic_write_bytes(Path(run_dir) / CHECKPOINT, lambda f: torch.save({"format": FORMAT, **state}, f))


def save_pretrained(run_dir, state):
    """Write ``pretrained.pt`` (the weights after pretraining, and its report) atomically."""
    atomic_write_bytes(Path(run_dir) / PRETRAINED, lambda f: torch.save({"format": FORMAT, **state}, f))


def load_checkpoint(path, map_location="cpu"):
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    _check_regular(path)
    if not path.exists():
        owner = live_owner(path.parent) if path.name == CHECKPOINT else None
        if owner is not None:
            raise CheckpointError(f"the run in {path.parent} is still training (process {owner} holds its "
                                  f"{LOCK}) and has no checkpoint yet; wait for its first epoch to end, then run "
                                  "the command again")
        if path.name == CHECKPOINT and (path.parent / CONFIG).exists():
            raise CheckpointError(f"the run in {path.parent} was stopped before its first checkpoint; continue it "
                                  f"with pyro-gmvae train --resume {path.parent}")
        raise CheckpointError(f"no checkpoint at {path}; train first (pyro-gmvae train --out {path.parent})")
    try:
        with torch.serialization.safe_globals(list(SAFE_GLOBALS)):
            state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:  # weights_only met a type outside the allow-list (or garbage)
        unsafe = [line for line in str(e).splitlines() if "GLOBAL" in line]
        if not unsafe:
            raise CheckpointError(f"{path} is truncated or not a checkpoint ({type(e).__name__}); "
                                  "delete it and train again, or resume from an intact run") from None
        detail = unsafe[0].split(". Please")[0].split("error: ")[-1].strip()[:120]
        raise CheckpointError(f"{path} holds more than tensors and numbers ({detail}), so it could run code "
                              "when opened and is refused; use checkpoints written by pyro-gmvae, from a source you "
                              "trust") from None
    except Exception as e:  # torch raises many types for a torn or foreign file
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({type(e).__name__}); "
                              "delete it and train again, or resume from an intact run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pyro-gmvae checkpoint; pass the run folder that "
                              "pyro-gmvae train wrote")
    return state


def checkpoint_source(run_dir):
    """``{"epoch", "checkpoint_sha256"}``: what a derived file (eval.json) was computed from, so that it can be
    told apart from the run's current checkpoint. The epoch is the last row of ``metrics.jsonl``."""
    digest = hashlib.sha256()
    with open(Path(run_dir) / CHECKPOINT, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    rows = read_metrics(run_dir)
    return {"epoch": rows[-1].get("epoch") if rows and isinstance(rows[-1], dict) else 0,
            "checkpoint_sha256": digest.hexdigest()}


def read_config(run_dir):
    path = Path(run_dir) / CONFIG
    _check_regular(path)
    if not path.exists():
        raise CheckpointError(f"{run_dir} has no {CONFIG}; pass a folder written by pyro-gmvae train")
    try:
        raw = json.loads(path.read_text())
        plugins = raw.get("plugins", [])
    except (ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); rewrite it or train again") from None
    _import_run_plugins(path, plugins)
    try:
        data = raw.get("data", {})
        if not isinstance(data, dict):
            raise TypeError(f"the data section must be a dict of data settings, got {data!r}")
        return ModelConfig.from_dict(raw["model"]), TrainConfig.from_dict(raw["train"]), data
    except ConfigError as e:  # a sound file naming a component (or field) this process does not know
        raise CheckpointError(f"the run in {Path(run_dir)} cannot be rebuilt: {e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); rewrite it or train again") from None


def _import_run_plugins(path, plugins):
    """Import the plugin modules a run recorded (its own priors, guides...), before its config is rebuilt;
    only those the user trusts (:func:`~pyro_gmvae.plugins.check_recorded_plugins`)."""
    if not isinstance(plugins, list):
        raise CheckpointError(f"{path} is corrupt (plugins should be a list of module names, got {plugins!r}); "
                              "rewrite it or train again")
    try:
        check_recorded_plugins(plugins, str(path))
    except ConfigError as e:
        raise CheckpointError(str(e)) from None
    try:
        import_plugins(plugins, announce=True)
    except ConfigError as e:
        raise CheckpointError(f"the run in {path.parent} needs the plugin modules {plugins} (recorded in "
                              f"{path.name}): {e}") from None


def config_record(model_config, train_config, data_spec):
    """What ``config.json`` holds: the two configs, the data, and the plugin modules the run needs."""
    return {"model": model_config.to_dict(), "train": train_config.to_dict(), "data": data_spec,
            "plugins": run_plugins(model_config)}


def read_metrics(run_dir, max_epoch=None):
    """The intact rows of ``metrics.jsonl`` (a torn last line is skipped), up to ``max_epoch``."""
    path = Path(run_dir) / METRICS
    _check_regular(path)
    rows = []
    if path.exists():
        for line in path.read_text(errors="replace").splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                break
            if max_epoch is not None and row.get("epoch", 0) > max_epoch:
                break
            rows.append(row)
    return rows


def rewrite_metrics(run_dir, rows):
    """Rewrite ``metrics.jsonl`` atomically, one strict JSON row per epoch (a NaN score becomes null)."""
    text = "".join(json.dumps(finite_or_none(r), allow_nan=False) + "\n" for r in rows)
    path = Path(run_dir) / METRICS
    try:
        if path.is_file() and path.read_bytes() == text.encode():  # a resume leaves an intact file as it is
            return
    except OSError:
        pass
    atomic_write_bytes(path, lambda f: f.write(text.encode()))
