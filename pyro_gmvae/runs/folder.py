"""The run folder and its owner: preparing, clearing and staging a folder, and the lock (``run.lock``) that
lets one process at a time train into it (:class:`RunFolder`)."""

import json
import os
import shutil
import signal
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import CheckpointError, ConfigError, StorageError
from .checkpoint import CHECKPOINT, CONFIG, METRICS, PRETRAINED, read_metrics
from .lock import LOCK, pid_alive as _pid_alive
from .storage import check_writable, storage_error


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


#: The files that the commands derive from a run's checkpoint (evaluate, sample, plot, predict's default
#: --out): removed when the checkpoint they came from is replaced (--overwrite, or a --resume's first epoch).
DERIVED = ("eval.json", "samples.png", "curves.png", "latent.png", "labels.csv")


def clear_derived(out):
    for name in DERIVED:
        p = Path(out) / name
        if p.is_file() or p.is_symlink():
            p.unlink()


def clear_run_dir(out):
    for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED):
        p = Path(out) / name
        if p.exists():
            p.unlink()
    clear_derived(out)
    remove_stale_temporaries(out)


def remove_stale_temporaries(out):
    """Delete the temporary files of writes that a killed process left half done."""
    for name in (CONFIG, METRICS, CHECKPOINT, PRETRAINED):
        for tmp in Path(out).glob(f".{name}.*.tmp"):
            tmp.unlink(missing_ok=True)


# -- ownership of a run folder -------------------------------------------------------------------------

#: Where ``--overwrite`` trains until the new run has its first checkpoint (the old run stays till then).
STAGING = ".new-run"


@contextmanager
def sigint_ignored():
    """Ctrl-C cannot interrupt the block (a second Ctrl-C during the cleanup of the first)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:  # None: a handler set outside Python (restoring it is impossible); Python's own is the closest
        signal.signal(signal.SIGINT, signal.default_int_handler if previous is None else previous)


def _identity(path):
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_ino, st.st_size, st.st_mtime_ns


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
        self._checkpoint = None  # (inode, size, mtime) of the checkpoint a --resume starts from

    def __enter__(self):
        part = self.target
        while not os.path.lexists(part) and part != part.parent:
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
            try:
                with os.fdopen(fd, "w") as f:
                    f.write(record)
            except BaseException:  # a full disk: no empty lock is left behind (nor the folders made for it)
                os.unlink(self.lock)
                raise
            self._record = record
            return
        raise ConfigError(f"{self.lock} keeps coming back; another process is claiming {self.target}: wait for "
                          "it, or choose another --out")

    def _check_owner(self, take_over=True):
        """Raise while a live process holds the lock; a stale lock is removed (``take_over``) or left."""
        if self.lock.is_symlink():  # pyro-gmvae writes a plain file; a link is someone else's, left alone
            raise ConfigError(f"{self.lock} is a symbolic link, which pyro-gmvae never writes; delete it "
                              f"(rm {self.lock}) if no run trains into {self.target}, then run the command again")
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
            if take_over:
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
        if take_over:
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
            self._checkpoint = _identity(self.target / CHECKPOINT)
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
            if self.resume and self._checkpoint is not None and _identity(self.target / CHECKPOINT) != self._checkpoint:
                clear_derived(self.target)  # the checkpoint they came from is replaced
                self._checkpoint = None
            return self.work
        target, staging = self.target, self.staging
        with sigint_ignored():
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
        with sigint_ignored():
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
            if not os.path.lexists(folder):  # never made (a name too long for the file system): its parents were
                continue
            try:
                folder.rmdir()
            except OSError:
                break


def check_not_in_use(out):
    """Raise :class:`ConfigError` while a live process trains into ``out`` (its lock); nothing is changed."""
    if (Path(out) / LOCK).is_file():
        RunFolder(out)._check_owner(take_over=False)
