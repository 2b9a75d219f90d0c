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

The package, one idea a module: :mod:`.storage` (atomic writes, strict JSON), :mod:`.checkpoint` (the file
formats), :mod:`.folder` (the folder and its lock), :mod:`.data` (the data fingerprint, the run's data),
:mod:`.preflight` (checks before anything is written or loaded), :mod:`.train` (``train_run``, ``load_run``).
"""

from .checkpoint import (CHECKPOINT, CONFIG, FORMAT, METRICS, PRETRAINED, checkpoint_source, config_record,
                         load_checkpoint, read_config, read_metrics, rewrite_metrics, save_checkpoint, save_pretrained)
from .data import check_data_fingerprint, data_fingerprint, describe_fingerprint, load_run_data, same_data, \
    saved_fingerprint, trained_range
from .folder import LOCK, STAGING, RunFolder, clear_run_dir, holds_run, prepare_run_dir, remove_stale_temporaries, \
    sigint_ignored
from .lock import live_owner
from .preflight import (RESUMABLE_CHANGES, check_compatible, check_device, check_free_bits_objective,
                        check_free_bits_site, check_model_size, check_resume_config, check_training_state, memory_bytes)
from .storage import atomic_write_bytes, check_writable, finite_or_none, remove_stale_temporary_files, storage_error, \
    temporary_prefix, write_json
from .train import load_run, train_run

__all__ = [
    "CHECKPOINT", "CONFIG", "FORMAT", "LOCK", "METRICS", "PRETRAINED", "RESUMABLE_CHANGES", "STAGING", "RunFolder",
    "atomic_write_bytes", "live_owner", "remove_stale_temporary_files", "temporary_prefix", "check_compatible",
    "checkpoint_source", "check_data_fingerprint", "check_device", "check_free_bits_objective", "check_free_bits_site",
    "check_model_size", "check_resume_config", "check_training_state", "check_writable", "clear_run_dir",
    "config_record", "data_fingerprint", "describe_fingerprint", "finite_or_none", "holds_run", "load_checkpoint",
    "load_run", "load_run_data", "memory_bytes", "prepare_run_dir", "read_config", "read_metrics",
    "remove_stale_temporaries", "rewrite_metrics", "same_data", "save_checkpoint", "save_pretrained",
    "saved_fingerprint", "sigint_ignored", "storage_error", "train_run", "trained_range", "write_json",
]
