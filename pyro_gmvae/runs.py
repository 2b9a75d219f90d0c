"""Run folders: ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``, written so that a run
killed at any moment leaves a loadable checkpoint and an intact metrics file.

- ``checkpoint.pt`` is written to a temporary file, flushed, and renamed over the old one at the
  end of every epoch (the rename is atomic), with the optimiser state, the RNG states and the epoch.
- ``metrics.jsonl`` gets one line per epoch *after* the checkpoint of that epoch is in place; on
  resume, lines past the checkpoint's epoch (and a torn last line) are dropped.
"""

import json
import os
import shutil
import tempfile
from pathlib import Path

import torch

from .config import ModelConfig, TrainConfig
from .errors import CheckpointError, ConfigError, DeviceError

CONFIG, METRICS, CHECKPOINT, PRETRAINED = "config.json", "metrics.jsonl", "checkpoint.pt", "pretrained.pt"
FORMAT = "pyro-gmvae-checkpoint-1"


def check_device(device):
    """A :class:`torch.device`, or a :class:`DeviceError` naming the fix."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"unknown device {device!r} ({e}); use cpu or cuda") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} was asked for but CUDA is not available on this machine; "
                          "use --device cpu")
    return dev


def atomic_write_bytes(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, and rename it over ``path``."""
    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_json(path, obj):
    atomic_write_bytes(path, lambda f: f.write((json.dumps(obj, indent=2, sort_keys=True) + "\n").encode()))


def save_checkpoint(run_dir, state):
    atomic_write_bytes(Path(run_dir) / CHECKPOINT, lambda f: torch.save({"format": FORMAT, **state}, f))


def load_checkpoint(path, map_location="cpu"):
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}; train first (pyro-gmvae train --out {path.parent})")
    try:
        state = torch.load(path, map_location=map_location, weights_only=False)
    except Exception as e:  # torch raises many types for a torn or foreign file
        raise CheckpointError(f"{path} is truncated or not a checkpoint ({type(e).__name__}); "
                              "delete it and train again, or resume from an intact run") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not a pyro-gmvae checkpoint; pass the run folder that "
                              "pyro-gmvae train wrote")
    return state


def read_config(run_dir):
    path = Path(run_dir) / CONFIG
    if not path.exists():
        raise CheckpointError(f"{run_dir} has no {CONFIG}; pass a folder written by pyro-gmvae train")
    try:
        raw = json.loads(path.read_text())
        return ModelConfig.from_dict(raw["model"]), TrainConfig.from_dict(raw["train"]), raw.get("data", {})
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); rewrite it or train again") from None


def read_metrics(run_dir, max_epoch=None):
    """The intact rows of ``metrics.jsonl`` (a torn last line is skipped), up to ``max_epoch``."""
    path = Path(run_dir) / METRICS
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                row = json.loads(line)
            except ValueError:
                break
            if max_epoch is not None and row.get("epoch", 0) > max_epoch:
                break
            rows.append(row)
    return rows


def append_metrics(run_dir, row):
    with open(Path(run_dir) / METRICS, "a") as f:
        f.write(json.dumps(row) + "\n")
        f.flush()
        os.fsync(f.fileno())


def rewrite_metrics(run_dir, rows):
    atomic_write_bytes(Path(run_dir) / METRICS, lambda f: f.write("".join(json.dumps(r) + "\n" for r in rows).encode()))


def prepare_run_dir(out, *, resume=False, overwrite=False):
    """Check the output folder before any work: refuse to clobber a run unless asked."""
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; choose one")
    has_run = (out / CONFIG).exists() or (out / CHECKPOINT).exists()
    if resume:
        if not (out / CHECKPOINT).exists():
            raise CheckpointError(f"cannot resume: {out} holds no {CHECKPOINT}; start a new run with --out {out}")
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder")
    if has_run and not overwrite:
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                          "or another --out")
    return out


def clear_run_dir(out):
    for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED, "eval.json"):
        p = Path(out) / name
        if p.exists():
            p.unlink()


def check_compatible(state, model, guide, run_dir):
    """Raise :class:`CheckpointError` unless the checkpoint's tensors fit ``model`` and ``guide``."""
    for key, module in (("model", model), ("guide", guide)):
        expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
        found = {k: tuple(v.shape) for k, v in state.get(key, {}).items()}
        if expected != found:
            diff = sorted(set(expected.items()) ^ set(found.items()))[:3]
            raise CheckpointError(f"the checkpoint in {run_dir} was written for another model configuration "
                                  f"(first differences: {diff}); use the config.json that came with it")


def copy_pretrained(src_run, dst_run):
    src = Path(src_run) / PRETRAINED
    if not src.exists():
        raise CheckpointError(f"--pretrained {src_run} holds no {PRETRAINED}; train a VaDE run there first")
    shutil.copyfile(src, Path(dst_run) / PRETRAINED)


def train_run(model_config, train_config, dataset, out, *, data_spec=None, resume=False, overwrite=False,
              pretrained=None, progress=True, log=print):
    """Train into the run folder ``out`` (see the module docstring); returns the :class:`Trainer`.

    Everything is checked before anything is written: the configs, the data against the model,
    the device, the folder, and the checkpoints to resume from or to take pretrained weights from.
    """
    from .data import validate_data
    from .errors import DataError
    from .inference.training import Trainer
    from .models import MODELS, build

    out = Path(out)
    check_device(train_config.device)
    validate_data(dataset.x, likelihood=model_config.likelihood)
    if dataset.data_dim != model_config.data_dim:
        raise DataError(f"the data has {dataset.data_dim} features but the model expects {model_config.data_dim}; "
                        "build the model with data_dim=dataset.data_dim")
    if dataset.num_datapoints < model_config.num_clusters:
        raise DataError(f"{dataset.num_datapoints} datapoints cannot fill {model_config.num_clusters} clusters; "
                        "use fewer clusters or more data")
    prepare_run_dir(out, resume=resume, overwrite=overwrite)
    model, guide = build(model_config)
    trainer = Trainer(model, guide, train_config, pretrain_epochs=MODELS[model_config.model].pretrain_epochs,
                      progress=progress)
    state = None
    if resume:
        state = load_checkpoint(out)
        check_compatible(state, model, guide, out)
    pre_state = None
    if pretrained is not None:
        pre_state = load_checkpoint(Path(pretrained) / PRETRAINED)
        check_compatible(pre_state, model, guide, pretrained)

    # -- from here on, files are written ------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        trainer.load_state_dict(state)
        rewrite_metrics(out, read_metrics(out, max_epoch=trainer.epoch))
        log(f"resuming {out} at epoch {trainer.epoch} of {train_config.epochs}")
    else:
        if overwrite:
            clear_run_dir(out)
        write_json(out / CONFIG, {"model": model_config.to_dict(), "train": train_config.to_dict(),
                                  "data": data_spec or {"dataset": dataset.name}})
        if pre_state is not None:
            model.load_state_dict(pre_state["model"])
            guide.load_state_dict(pre_state["guide"])
            trainer.pretrain_report = dict(pre_state.get("pretrain_report") or {}, pretrained_from=str(pretrained))
            atomic_write_bytes(out / PRETRAINED, lambda f: torch.save({"format": FORMAT, **pre_state}, f))
        elif trainer.pretrain_epochs:
            trainer.pretrain(dataset)
            atomic_write_bytes(out / PRETRAINED, lambda f: torch.save(
                {"format": FORMAT, "model": model.state_dict(), "guide": guide.state_dict(),
                 "pretrain_report": trainer.pretrain_report}, f))
        save_checkpoint(out, trainer.state_dict())

    def on_epoch_end(tr, row):
        save_checkpoint(out, tr.state_dict())
        append_metrics(out, row)

    trainer.fit(dataset, on_epoch_end=on_epoch_end)
    return trainer


def load_run(run_dir, device="cpu"):
    """``(model, guide, model_config, train_config, data_spec)`` of a trained run, on ``device``."""
    from .models import build

    model_config, train_config, data_spec = read_config(run_dir)
    check_device(device)
    state = load_checkpoint(run_dir)
    model, guide = build(model_config)
    check_compatible(state, model, guide, run_dir)
    model.load_state_dict(state["model"])
    guide.load_state_dict(state["guide"])
    return model.to(device).eval(), guide.to(device).eval(), model_config, train_config, data_spec
