"""Run folders: ``config.json``, ``metrics.jsonl`` and ``checkpoint.pt``, written so that a run
killed at any moment leaves a loadable checkpoint and an intact metrics file.

- ``checkpoint.pt`` is written to a temporary file, flushed, and renamed over the old one at the
  end of every epoch (the rename is atomic), with the optimiser state, the RNG states, the epoch
  and the metrics rows so far.
- ``metrics.jsonl`` is rewritten the same way (one JSON row per epoch) *after* the checkpoint of
  that epoch is in place, so it is never torn and lags the checkpoint by at most one row. On resume
  it is rewritten from the checkpoint's rows: a row past the checkpoint is dropped, a missing one
  restored.
- A run killed before its first checkpoint (during pretraining) holds only ``config.json``;
  ``--resume`` starts it over, which gives the same result since the run is seeded.

Training is deterministic: the model is initialised from ``seed``, each epoch's minibatch order is
seeded by ``(seed, epoch)``, and the RNG states travel in the checkpoint, so on the CPU a resumed
run ends bit for bit where an uninterrupted one does.
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
        plugins = raw.get("plugins", [])
    except (ValueError, AttributeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); rewrite it or train again") from None
    _import_run_plugins(path, plugins)
    try:
        return ModelConfig.from_dict(raw["model"]), TrainConfig.from_dict(raw["train"]), raw.get("data", {})
    except ConfigError as e:  # a sound file naming a component (or field) this process does not know
        raise CheckpointError(f"the run in {Path(run_dir)} cannot be rebuilt: {e}") from None
    except (ValueError, KeyError, TypeError) as e:
        raise CheckpointError(f"{path} is corrupt ({e}); rewrite it or train again") from None


def _import_run_plugins(path, plugins):
    """Import the plugin modules a run recorded (its own priors, guides...), before its config is rebuilt."""
    from .plugins import import_plugins

    if not isinstance(plugins, list):
        raise CheckpointError(f"{path} is corrupt (plugins should be a list of module names, got {plugins!r}); "
                              "rewrite it or train again")
    try:
        import_plugins(plugins)
    except ConfigError as e:
        raise CheckpointError(f"the run in {path.parent} needs the plugin modules {plugins} (recorded in "
                              f"{path.name}): {e}") from None


def config_record(model_config, train_config, data_spec):
    """What ``config.json`` holds: the two configs, the data, and the plugin modules the run needs."""
    from .plugins import run_plugins

    return {"model": model_config.to_dict(), "train": train_config.to_dict(), "data": data_spec,
            "plugins": run_plugins(model_config)}


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
    """Append one row (``train_run`` rewrites the file atomically instead; kept for tools)."""
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
        if not has_run:
            raise CheckpointError(f"cannot resume: {out} holds no {CHECKPOINT}; start a new run with --out {out}")
        if not (out / CHECKPOINT).exists() and read_metrics(out):
            raise CheckpointError(f"cannot resume: {out / CHECKPOINT} is missing although {METRICS} records "
                                  "finished epochs; restore the checkpoint, or start over with --overwrite")
        # config.json alone: killed before the first checkpoint; train_run starts it over
        return out
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder")
    if has_run and not overwrite:
        raise ConfigError(f"{out} already holds a run; pass --resume to continue it, --overwrite to replace it, "
                          "or another --out")
    return out


def clear_run_dir(out):
    for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED, "eval.json", "samples.png", "curves.png", "latent.png"):
        p = Path(out) / name
        if p.exists():
            p.unlink()
    remove_stale_temporaries(out)


def remove_stale_temporaries(out):
    """Delete the temporary files of writes that a killed process left half done."""
    for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED):
        for tmp in Path(out).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


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


#: Training settings that may change when a run is resumed; the others would change its result.
RESUMABLE_CHANGES = ("epochs", "device")


def check_resume_config(run_dir, model_config, train_config):
    """Raise :class:`CheckpointError` unless the configs match the run's ``config.json``
    (``epochs`` and ``device`` may change)."""
    saved_model, saved_train, _ = read_config(run_dir)
    if saved_model != model_config:
        diff = {k: (v, getattr(model_config, k)) for k, v in saved_model.to_dict().items()
                if getattr(model_config, k) != v}
        raise CheckpointError(f"the run in {run_dir} was trained with another model configuration "
                              f"(saved vs given: {diff}); resume with the config.json that came with it")
    mine, theirs = train_config.to_dict(), saved_train.to_dict()
    diff = {k: (theirs[k], mine[k]) for k in mine if k not in RESUMABLE_CHANGES and mine[k] != theirs.get(k)}
    if diff:
        raise CheckpointError(f"resuming {run_dir} with other training settings would not continue the same run "
                              f"(saved vs given: {diff}); only {', '.join(RESUMABLE_CHANGES)} may change")


def check_free_bits_site(model, guide, train_config):
    """The free-bits site must be a cluster site of the model or a site of the guide (checked
    here, before training, rather than inside the first trace)."""
    from .errors import check_choice

    if train_config.free_bits <= 0:
        return
    site = train_config.free_bits_site
    check_choice("free-bits site", site, set(model.cluster_sites) | set(guide.sites))
    if site in model.cluster_sites and train_config.free_bits_group != "site":
        raise ConfigError(f"free-bits group must be 'site' for the enumerated site {site!r}; "
                          "pass --free-bits-group site")


def check_free_bits_objective(model, guide, train_config, x):
    """Evaluate the constrained objective once on two datapoints, so that a site/group combination the
    handler refuses (e.g. per-dimension free bits on a latent with enumerated parents) fails before any
    file is written. Leaves the random state untouched."""
    from .inference import FreeBitsMessenger, make_elbo

    if train_config.free_bits <= 0:
        return
    handler = FreeBitsMessenger(train_config.free_bits, train_config.free_bits_site, train_config.free_bits_group)
    with torch.random.fork_rng(), torch.no_grad():
        try:
            make_elbo().loss(handler(model), guide, x[:2].to(next(iter(model.parameters())).dtype))
        except ConfigError as e:
            raise ConfigError(str(e).split("\n")[0]) from None


def train_run(model_config, train_config, dataset, out, *, data_spec=None, resume=False, overwrite=False,
              pretrained=None, progress=True, log=print):
    """Train into the run folder ``out`` (see the module docstring); returns the :class:`Trainer`.

    Everything is checked before anything is written: the configs, the data against the model,
    the device, the folder, and the checkpoints to resume from or to take pretrained weights from.
    With ``resume=True`` the configs must be those of ``out/config.json`` (``epochs`` and
    ``device`` may change).
    """
    import pyro

    from .config import ModelConfig, TrainConfig
    from .data import Dataset
    from .errors import DataError
    from .inference.training import Trainer
    from .models import MODELS, build

    out = Path(out)
    if not isinstance(model_config, ModelConfig) or not isinstance(train_config, TrainConfig):
        raise ConfigError("train_run takes a ModelConfig and a TrainConfig; build them with "
                          "ModelConfig(...) and TrainConfig(...)")
    if not isinstance(dataset, Dataset):
        raise DataError(f"train_run takes a Dataset, got {type(dataset).__name__}; wrap tensors with "
                        "pyro_gmvae.from_tensor(x)")
    check_device(train_config.device)
    prepare_run_dir(out, resume=resume, overwrite=overwrite)
    restart = resume and not (out / CHECKPOINT).exists()
    if resume:
        check_resume_config(out, model_config, train_config)
    pyro.set_rng_seed(train_config.seed)  # the initial weights are part of the run's result
    model, guide = build(model_config)
    trainer = Trainer(model, guide, train_config, pretrain_epochs=MODELS[model_config.model].pretrain_epochs,
                      progress=progress)
    trainer.check_data(dataset)  # NaN/Inf, range for Bernoulli, feature size, enough datapoints
    check_free_bits_site(model, guide, train_config)
    check_free_bits_objective(model, guide, train_config, dataset.x.cpu())
    state = None
    if resume and not restart:
        state = load_checkpoint(out)
        check_compatible(state, model, guide, out)
        if train_config.epochs < state["epoch"]:
            raise ConfigError(f"{out} is already at epoch {state['epoch']}, past --epochs {train_config.epochs}; "
                              f"pass --epochs {state['epoch']} or more")
    pre_state = None
    if pretrained is not None:
        pre_state = load_checkpoint(Path(pretrained) / PRETRAINED)
        check_compatible(pre_state, model, guide, pretrained)

    # -- from here on, files are written ------------------------------------------------------------
    out.mkdir(parents=True, exist_ok=True)
    if state is not None:
        remove_stale_temporaries(out)
        trainer.load_state_dict(state)
        history = state.get("metrics")
        if history is None:  # a checkpoint written before the rows travelled with it
            history = read_metrics(out)
        history = [row for row in history if row.get("epoch", 0) <= trainer.epoch]
        rewrite_metrics(out, history)
        _, saved_train, saved_data = read_config(out)
        if saved_train != train_config:  # new --epochs or --device: config.json tells what the run is now
            write_json(out / CONFIG, config_record(model_config, train_config, saved_data))
        log(f"resuming {out} at epoch {trainer.epoch} of {train_config.epochs}")
    else:
        history = []
        if restart:
            log(f"{out} was stopped before its first checkpoint; starting it over")
        if overwrite or restart:
            clear_run_dir(out)
        write_json(out / CONFIG, config_record(model_config, train_config, data_spec or {"dataset": dataset.name}))
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
        save_checkpoint(out, {**trainer.state_dict(), "metrics": history})

    def on_epoch_end(tr, row):
        history.append(row)
        save_checkpoint(out, {**tr.state_dict(), "metrics": history})
        rewrite_metrics(out, history)

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
