"""Atomic storage: a file is written beside its target, fsynced and renamed over it, so that a run killed at
any moment leaves the old file or the new one, never a torn one; an ``OSError`` becomes a
:class:`~pyro_gmvae.errors.StorageError` that names the fix."""

import errno
import glob
import json
import math
import os
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError, StorageError


def storage_error(error, path, state=None):
    """A :class:`StorageError` for the ``OSError`` met while writing ``path``: what happened, and the fix.
    ``state`` says what the error left (e.g. ``the run is unchanged at epoch 3``); the error keeps ``error`` and
    ``path`` as ``.cause`` and ``.path``, so that a caller that knows more can say it."""
    reason = error.strerror or str(error)
    kept = state or "what was written before is intact"
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        what = "disk quota exceeded" if error.errno == errno.EDQUOT else "No space left on device"
        message = (f"{what} ({mount_point(path)}) while writing {path}; {kept}; free some space on that disk and "
                   "run the command again" + ("" if state else " (pyro-gmvae train --resume continues a run from its "
                                                                "last checkpoint)"))
    else:
        if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            fix = "make the folder writable, or choose another folder"
        elif error.errno in (errno.ENOTDIR, errno.EEXIST):
            fix = "a part of the path is a file; pass a path whose folders are folders"
        else:
            fix = "check the path and the disk, and run the command again"
        message = f"cannot write {path}: {reason}; " + (f"{state}; " if state else "") + fix
    storage = StorageError(message)
    storage.cause, storage.path = error, path
    return storage


def mount_point(path):
    """The folder on which the file system holding ``path`` is mounted (``path`` need not exist)."""
    part = Path(os.path.abspath(path))
    while part != part.parent and not os.path.ismount(part):
        part = part.parent
    return part


def _os_error(error):
    """The ``OSError`` behind ``error``: itself, or the one a library met first and then hid behind its own
    (torch.save's ``RuntimeError: ... unexpected pos`` after the write that filled the disk)."""
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, OSError):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _umask():
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def temporary_prefix(path):
    """``.NAME.``, the start of the temporary file that :func:`atomic_write_bytes` writes beside ``path``: the
    name is cut to 200 bytes so that, with the 8 random characters and ``.tmp`` mkstemp adds, it stays within
    the 255 bytes a file name may have."""
    return "." + os.fsdecode(os.fsencode(Path(path).name)[:200]) + "."


def remove_stale_temporary_files(path, min_age=300):
    """Delete the temporary files of earlier writes of ``path`` that a killed process left (older than
    ``min_age`` seconds: a write in progress elsewhere lasts far less, its bytes being ready before it starts)."""
    path = Path(path)
    now = time.time()
    for tmp in path.parent.glob(glob.escape(temporary_prefix(path)) + "*.tmp"):
        try:
            if tmp.is_file() and not tmp.is_symlink() and now - tmp.stat().st_mtime > min_age:
                tmp.unlink()
        except OSError:
            pass


def atomic_write_bytes(path, write):
    """Call ``write(fileobj)`` on a temporary file beside ``path``, fsync it, and rename it over ``path``.

    The file gets the permissions that the umask gives a new file (``mkstemp`` alone makes it 0600).
    An ``OSError`` (a full disk, a read-only folder) leaves ``path`` as it was and becomes a
    :class:`StorageError` naming the fix."""
    path = Path(path)
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path), suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)
        cause = _os_error(e) if isinstance(e, Exception) else None
        if cause is not None and not isinstance(cause, StorageError):
            raise storage_error(cause, path) from None
        raise


def finite_or_none(value):
    """``value`` with every non-finite float replaced by None, so that it is strict JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: finite_or_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [finite_or_none(v) for v in value]
    return value


def write_json(path, obj):
    """Write strict JSON (a NaN or an infinity raises instead of writing a bare ``NaN``)."""
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=False)
    atomic_write_bytes(path, lambda f: f.write((text + "\n").encode()))


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
