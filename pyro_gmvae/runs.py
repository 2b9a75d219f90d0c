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
  ``--resume`` starts it over, which gives the same result since the run is seeded. A new run that
  *fails* before its first checkpoint (bad data met in pretraining, a full disk) leaves nothing.
- One process at a time owns a folder: ``run.lock`` is created atomically (``O_CREAT | O_EXCL``)
  with the owner's pid and host and removed when the run ends; a second process fails before it
  writes anything, and a lock left by a killed process is reported and taken over
  (:class:`RunFolder`).
- ``--overwrite`` trains into a staging folder inside the run folder until the new run has its first
  checkpoint, and only then replaces the old run, so a new run that fails early loses nothing.
- ``config.json`` records a fingerprint of the training data (shape, dtype, SHA-256 of the values
  and labels); ``--resume`` refuses other data and ``evaluate`` warns.
- Files get the permissions the umask gives (not ``mkstemp``'s 0600); an ``OSError`` while writing
  becomes a :class:`~pyro_gmvae.errors.StorageError` that names the fix.

Training is deterministic: the model is initialised from ``seed``, each epoch's minibatch order is
seeded by ``(seed, epoch)``, and the RNG states travel in the checkpoint, so on the CPU a resumed
run ends bit for bit where an uninterrupted one does.
"""

import errno
import hashlib
import json
import math
import os
import shutil
import signal
import socket
import tempfile
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import torch

from .config import ModelConfig, TrainConfig
from .errors import CheckpointError, ConfigError, DeviceError, StorageError

CONFIG, METRICS, CHECKPOINT, PRETRAINED = "config.json", "metrics.jsonl", "checkpoint.pt", "pretrained.pt"
FORMAT = "pyro-gmvae-checkpoint-1"


def check_device(device):
    """A :class:`torch.device`, or a :class:`DeviceError` naming the fix."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as e:
        raise DeviceError(f"unknown device {device!r} ({e}); use cpu or cuda") from None
    if dev.type not in ("cpu", "cuda"):
        raise DeviceError(f"device {device!r} is not supported (pyro-gmvae runs on cpu and cuda); "
                          "use --device cpu or --device cuda")
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise DeviceError(f"--device {device} was asked for but CUDA is not available on this machine; "
                          "use --device cpu")
    return dev


def storage_error(error, path):
    """A :class:`StorageError` for the ``OSError`` met while writing ``path``: what happened, and the fix."""
    reason = error.strerror or str(error)
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        fix = ("free some space on that disk and run the command again; what was written before is intact "
               "(pyro-gmvae train --resume continues a run from its last checkpoint)")
    elif error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        fix = "make the folder writable, or choose another folder"
    elif error.errno in (errno.ENOTDIR, errno.EEXIST):
        fix = "a part of the path is a file; pass a path whose folders are folders"
    else:
        fix = "check the path and the disk, and run the command again"
    return StorageError(f"cannot write {path}: {reason}; {fix}")


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write_bytes(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, and rename it over ``path``.

    The file gets the permissions that the umask gives a new file (``mkstemp`` alone makes it 0600).
    An ``OSError`` (a full disk, a read-only folder) leaves ``path`` as it was and becomes a
    :class:`StorageError` naming the fix."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, StorageError):
            raise storage_error(e, path) from None
        raise


def write_json(path, obj):
    """Write strict JSON (a NaN or an infinity raises instead of writing a bare ``NaN``)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, lambda f: f.write((text + "\n").encode()))


def save_checkpoint(run_dir, state):
    atomic_write_bytes(Path(run_dir) / CHECKPOINT, lambda f: torch.save({"format": FORMAT, **state}, f))


def load_checkpoint(path, map_location="cpu"):
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT
    if not path.exists():
        if path.name == CHECKPOINT and (path.parent / CONFIG).exists():
            raise CheckpointError(f"the run in {path.parent} was stopped before its first checkpoint; continue it "
                                  f"with pyro-gmvae train --resume {path.parent}")
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
        data = raw.get("data", {})
        if not isinstance(data, dict):
            raise TypeError(f"the data section must be a dict of data settings, got {data!r}")
        return ModelConfig.from_dict(raw["model"]), TrainConfig.from_dict(raw["train"]), data
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
        f.write(json.dumps(_finite_or_none(row), allow_nan=False) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _finite_or_none(value):
    """``value`` with every non-finite float replaced by None, so that it is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite_or_none(v) for v in value]
    return value


def rewrite_metrics(run_dir, rows):
    """Rewrite ``metrics.jsonl`` atomically, one strict JSON row per epoch (a NaN score becomes null)."""
    text = "".join(json.dumps(_finite_or_none(r), allow_nan=False) + "\n" for r in rows)
    atomic_write_bytes(Path(run_dir) / METRICS, lambda f: f.write(text.encode()))


def _is_writable(folder):
    return os.access(folder, os.W_OK | os.X_OK)


def check_writable(path, what="--out"):
    """Raise unless files can be created at ``path`` (a folder, or a file to be): every existing part
    of the path is a folder and the nearest existing folder is writable. Nothing is created."""
    path = Path(path)
    for part in (path, *path.parents):
        if part.exists() or part.is_symlink():
            if not part.is_dir():
                if part == path:
                    raise ConfigError(f"{what} {path} is a file; pass a folder")
                raise ConfigError(f"{what} {path}: {part} is a file, not a folder; pass a path whose folders "
                                  "are folders")
            if not _is_writable(part):
                raise StorageError(f"cannot write into {part} (permission denied or a read-only file system); "
                                   f"make it writable, or choose another {what}")
            return


def _config_is_ours(out):
    """Whether ``out/config.json`` is one that pyro-gmvae wrote (a dict with model and train sections)."""
    try:
        raw = json.loads((Path(out) / CONFIG).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and isinstance(raw.get("model"), dict) and isinstance(raw.get("train"), dict)


def holds_run(out):
    """Whether ``out`` holds a run (a checkpoint, or a config.json that pyro-gmvae wrote)."""
    out = Path(out)
    return (out / CHECKPOINT).exists() or ((out / CONFIG).exists() and _config_is_ours(out))


def prepare_run_dir(out, *, resume=False, overwrite=False):
    """Check the output folder before any work: refuse to clobber a run unless asked, and refuse a
    folder that cannot be written or whose config.json pyro-gmvae did not write."""
    out = Path(out)
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other; choose one")
    check_writable(out)
    if (out / CONFIG).exists() and not (out / CHECKPOINT).exists() and not _config_is_ours(out):
        raise ConfigError(f"{out / CONFIG} was not written by pyro-gmvae (it has no model and train sections), "
                          "so the folder holds no run and that file would be replaced; move the file away, or "
                          "choose another --out")
    has_run = holds_run(out)
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


# -- ownership of a run folder -------------------------------------------------------------------------

#: The lock file of a run folder: created atomically (O_CREAT | O_EXCL) by the process that trains into
#: the folder, held for the whole run, and holding that process's pid and host.
LOCK = "run.lock"
#: Where ``--overwrite`` trains until the new run has its first checkpoint (the old run stays till then).
STAGING = ".new-run"


def _pid_alive(pid):
    if pid == os.getpid():
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    try:  # a killed process that its parent has not reaped yet is a zombie: dead for us
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] not in ("Z", "X")
    except (OSError, IndexError):
        return True


@contextmanager
def _sigint_ignored():
    """Ctrl-C cannot interrupt the block (a second Ctrl-C during the cleanup of the first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


class RunFolder:
    """The ownership of a run folder while :func:`train_run` writes into it (a context manager).

    On entry the folder is created (with its parents) and the lock file ``run.lock`` is created
    atomically; a second process fails there with a message naming the owner, before it writes
    anything. A lock left by a process that no longer runs (killed) is reported and taken over. As the
    owner, :meth:`start` checks the folder again and returns where to write: with ``overwrite`` and a
    run already there, a staging folder inside it, so that the old run stays whole until the new one
    has its first checkpoint (:meth:`checkpointed` then swaps them). On exit the lock goes, and a run
    that failed before its first checkpoint leaves nothing behind: a new run's files are removed with
    the folders created for it, and a staged replacement is dropped, the old run untouched.
    """

    def __init__(self, out, *, resume=False, overwrite=False, log=print):
        self.target = self.work = Path(out)
        self.resume, self.overwrite, self.log = resume, overwrite, log
        self.lock = self.target / LOCK
        self.staging = None
        self._fresh, self._before, self._created, self._record = False, set(), [], None

    def __enter__(self):
        part = self.target
        while not (part.exists() or part.is_symlink()) and part != part.parent:
            self._created.append(part)
            part = part.parent
        try:
            self.target.mkdir(parents=True, exist_ok=True)
            self._acquire()
        except BaseException as e:
            self._remove_created()
            if isinstance(e, OSError) and not isinstance(e, StorageError):
                raise storage_error(e, self.target) from None
            raise
        return self

    def _acquire(self):
        record = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                             "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}) + "\n"
        for _ in range(3):
            try:
                fd = os.open(self.lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
            except FileExistsError:
                self._check_owner()  # raises while a live process holds it; removes a stale one
                continue
            with os.fdopen(fd, "w") as f:
                f.write(record)
            self._record = record
            return
        raise ConfigError(f"{self.lock} keeps coming back; another process is claiming {self.target}: wait for "
                          "it, or choose another --out")

    def _check_owner(self):
        try:
            raw, age = self.lock.read_text(), time.time() - self.lock.stat().st_mtime
        except FileNotFoundError:  # released meanwhile
            return
        try:
            owner = json.loads(raw)
            pid, host = int(owner["pid"]), str(owner["host"])
        except (ValueError, KeyError, TypeError):
            if age < 10:  # its owner is between creating and writing it
                raise ConfigError(f"{self.target} is being claimed by another process (its {LOCK} is being "
                                  "written); wait for that run, or choose another --out") from None
            self.log(f"note: {self.lock} is unreadable and {age:.0f} s old (its owner was killed while "
                     "creating it); taking the folder over")
            self.lock.unlink(missing_ok=True)
            return
        if host != socket.gethostname():
            raise ConfigError(f"{self.target} is in use by pid {pid} on host {host} (see {self.lock}); wait for "
                              f"that run to finish or choose another --out; if no process there trains into "
                              f"it any more, delete {self.lock}")
        if _pid_alive(pid):
            raise ConfigError(f"{self.target} is in use: process {pid} is training into it (see {self.lock}); "
                              f"wait for it to finish, or choose another --out (if process {pid} is no pyro-gmvae "
                              f"run, its pid was reused: delete {self.lock})")
        self.log(f"note: {self.lock} was left by process {pid}, which no longer runs (it was killed); "
                 "taking the folder over")
        self.lock.unlink(missing_ok=True)

    def start(self):
        """Check the folder again, now as its owner (another process may have finished a run in it since
        the first check), and return the folder to write into."""
        prepare_run_dir(self.target, resume=self.resume, overwrite=self.overwrite)
        if (self.target / STAGING).exists():  # left by an --overwrite that was killed before its first checkpoint
            shutil.rmtree(self.target / STAGING, ignore_errors=True)
        if self.resume:
            return self.work
        if self.overwrite and holds_run(self.target):
            self.staging = self.target / STAGING
            try:
                self.staging.mkdir()
            except OSError as e:
                raise storage_error(e, self.staging) from None
            self.work = self.staging
        else:
            self._fresh, self._before = True, set(os.listdir(self.target))
        return self.work

    def checkpointed(self):
        """The new run has a good checkpoint: an overwritten run is replaced now. Returns the folder to
        write into from now on."""
        if self.staging is None:
            return self.work
        target, staging = self.target, self.staging
        with _sigint_ignored():
            try:
                (target / CHECKPOINT).unlink(missing_ok=True)  # first, so that no old checkpoint meets a new config
                clear_run_dir(target)
                for name in (CONFIG, PRETRAINED, METRICS, CHECKPOINT):  # the checkpoint last
                    if (staging / name).exists():
                        os.replace(staging / name, target / name)
                shutil.rmtree(staging, ignore_errors=True)
            except OSError as e:
                raise storage_error(e, target) from None
        self.staging, self.work = None, target
        return target

    def __exit__(self, exc_type, exc, tb):
        with _sigint_ignored():
            try:
                if exc_type is not None:
                    self._clean_up(exc_type)
            finally:
                self._release()
                self._remove_created()
        return False

    def _clean_up(self, exc_type):
        if self.staging is not None:  # the new run never had a checkpoint: the old one stays as it was
            shutil.rmtree(self.staging, ignore_errors=True)
            self.log(f"the new run stopped before its first checkpoint; the previous run in {self.target} "
                     "is unchanged")
        elif self._fresh and issubclass(exc_type, Exception) and not (self.target / CHECKPOINT).exists():
            # failed before its first checkpoint (bad data met in pretraining, a full disk): nothing to resume,
            # so nothing stays. Ctrl-C keeps config.json, from which --resume starts the run over.
            for name in (CONFIG, METRICS, PRETRAINED):
                if name not in self._before:
                    (self.target / name).unlink(missing_ok=True)
            remove_stale_temporaries(self.target)

    def _release(self):
        try:
            if self._record is not None and self.lock.read_text() == self._record:
                self.lock.unlink()
        except OSError:
            pass
        self._record = None

    def _remove_created(self):
        for folder in self._created:  # deepest first; stop at the first that is not empty
            try:
                folder.rmdir()
            except OSError:
                break


# -- the data a run was trained on ---------------------------------------------------------------------

def data_fingerprint(dataset):
    """``{"shape", "dtype", "sha256"}`` of a :class:`~pyro_gmvae.data.Dataset`: its values and labels,
    whatever the device. Recorded in config.json, so that ``--resume`` can tell other data."""
    x = dataset.x.detach().cpu().contiguous()
    digest = hashlib.sha256(x.reshape(-1).view(torch.uint8).numpy().tobytes())
    if dataset.y is not None:
        digest.update(dataset.y.detach().cpu().to(torch.int64).contiguous().numpy().tobytes())
    return {"shape": list(x.shape), "dtype": str(x.dtype).replace("torch.", ""), "sha256": digest.hexdigest()}


def _describe(fingerprint):
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
    if mine != saved:
        raise CheckpointError(f"the data differ from those the run in {run_dir} was trained on (then: "
                              f"{_describe(saved)}; now: {_describe(mine)}); restore the original data files "
                              "and the data section of config.json, or start a new run with --out")


# -- checks before a run is loaded or built ------------------------------------------------------------

def check_training_state(state, run_dir):
    """Raise :class:`CheckpointError` unless ``state`` holds what resuming needs, of the right types."""
    problems = []
    if isinstance(state.get("epoch"), bool) or not isinstance(state.get("epoch"), int) or state["epoch"] < 0:
        problems.append(f"epoch {state.get('epoch')!r} is not a count of epochs")
    for key in ("model", "guide", "optim"):
        if not isinstance(state.get(key), dict):
            problems.append(f"{key} is missing")
    rng = state.get("rng")
    if not isinstance(rng, dict) or not {"torch", "numpy", "python"} <= set(rng):
        problems.append("rng (the random states) is missing")
    metrics = state.get("metrics")
    if metrics is not None and not (isinstance(metrics, list) and all(isinstance(r, dict) for r in metrics)):
        problems.append("metrics is not a list of rows")
    if problems:
        raise CheckpointError(f"the checkpoint in {run_dir} cannot be resumed: {'; '.join(problems)}; restore the "
                              "checkpoint.pt that pyro-gmvae wrote, or start over with --overwrite")


def _memory_bytes(device):
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_properties(torch.device(device)).total_memory
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def check_model_size(model_config, device="cpu"):
    """Raise :class:`ConfigError` when training the model would need more memory than the device has:
    its parameters, their gradients and Adam's two moments, counted on the meta device (nothing allocated)."""
    from .models import build

    try:
        with torch.device("meta"):
            model, guide = build(model_config)
    except ConfigError:
        raise
    except Exception:  # a component that cannot be built on the meta device: no estimate
        return
    num = sum(p.numel() for module in (model, guide) for p in module.parameters())
    need = num * 4 * torch.finfo(torch.get_default_dtype()).bits // 8
    have = _memory_bytes(device)
    if have is not None and need > have:
        raise ConfigError(f"the model has {num:,} parameters: training needs about {need / 2 ** 30:.1f} GiB "
                          f"(parameters, gradients and Adam's moments) but {device} has {have / 2 ** 30:.1f} GiB; "
                          "lower --latent-dim, --num-clusters or the network size")


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
    from .inference import FreeBitsMessenger
    from .inference.cluster_inference import make_cluster_inference

    if train_config.free_bits <= 0:
        return
    from .inference.local_params import LocalParams

    handler = FreeBitsMessenger(train_config.free_bits, train_config.free_bits_site, train_config.free_bits_group)
    with torch.random.fork_rng(), torch.no_grad(), LocalParams():  # the user's param store stays as it was
        try:
            strategy = make_cluster_inference(guide)  # the objective as trained (cluster_inference)
            strategy.make_elbo().loss(handler(strategy.model(model)), strategy.guide,
                                      x[:2].to(next(iter(model.parameters())).dtype))
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
    from .inference.training import Trainer, check_world_size
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
        check_data_fingerprint(out, dataset, log)
    check_model_size(model_config, train_config.device)
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
        check_training_state(state, out)
        check_compatible(state, model, guide, out)
        check_world_size(state, trainer.world)
        if train_config.epochs < state["epoch"]:
            raise ConfigError(f"{out} is already at epoch {state['epoch']}, past --epochs {train_config.epochs}; "
                              f"pass --epochs {state['epoch']} or more")
    pre_state = None
    if pretrained is not None:
        pre_state = load_checkpoint(Path(pretrained) / PRETRAINED)
        check_compatible(pre_state, model, guide, pretrained)

    if state is None:  # a new run (or one started over) records what it trains on
        data_spec = {**(data_spec or {"dataset": dataset.name}), "fingerprint": data_fingerprint(dataset)}

    # -- from here on, files are written, by the folder's owner only: rank 0 under torchrun -------------
    trainer.world.barrier()  # every rank has checked the folder before rank 0 writes into it
    if not trainer.world.is_main:
        return _follow_run(trainer, dataset, state=state, pre_state=pre_state, pretrained=pretrained)
    with RunFolder(out, resume=resume, overwrite=overwrite, log=log) as folder:
        return _write_run(folder, model_config, train_config, dataset, trainer=trainer, model=model, guide=guide,
                          state=state, restart=restart, overwrite=overwrite, pre_state=pre_state,
                          pretrained=pretrained, data_spec=data_spec, log=log)


def _write_run(folder, model_config, train_config, dataset, *, trainer, model, guide, state, restart, overwrite,
               pre_state, pretrained, data_spec, log):
    """The writing half of :func:`train_run`, as the owner of the folder (see :class:`RunFolder`)."""
    out = folder.start()
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
            with trainer.local_params:
                trainer.pretrain(dataset)
            atomic_write_bytes(out / PRETRAINED, lambda f: torch.save(
                {"format": FORMAT, "model": model.state_dict(), "guide": guide.state_dict(),
                 "pretrain_report": trainer.pretrain_report}, f))
        save_checkpoint(out, {**trainer.state_dict(), "metrics": history})

    def on_epoch_end(tr, row):
        nonlocal out
        history.append(row)
        save_checkpoint(out, {**tr.state_dict(), "metrics": history})
        rewrite_metrics(out, history)
        out = folder.checkpointed()  # the first good checkpoint: an overwritten run is replaced now

    trainer.fit(dataset, on_epoch_end=on_epoch_end)
    folder.checkpointed()
    return trainer


def _follow_run(trainer, dataset, *, state, pre_state, pretrained):
    """What a rank other than 0 does in :func:`train_run`: the same computation, without files. Its
    collective calls (the checkpoint's gather of random states, the epoch's loss) match rank 0's."""
    if state is not None:
        trainer.load_state_dict(state)
    else:
        if pre_state is not None:
            trainer.model.load_state_dict(pre_state["model"])
            trainer.guide.load_state_dict(pre_state["guide"])
            trainer.pretrain_report = dict(pre_state.get("pretrain_report") or {}, pretrained_from=str(pretrained))
        elif trainer.pretrain_epochs:
            with trainer.local_params:
                trainer.pretrain(dataset)
        trainer.state_dict()  # rank 0's first checkpoint
    trainer.fit(dataset, on_epoch_end=lambda tr, row: tr.state_dict())
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
