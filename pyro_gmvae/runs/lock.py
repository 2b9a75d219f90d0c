"""The lock file of a run folder, ``run.lock``: who holds it and whether that process still runs (read by
:class:`~pyro_gmvae.runs.folder.RunFolder`, which takes it, and by the commands that open a run)."""

import json
import os
import socket
from pathlib import Path

#: The lock file of a run folder: created atomically (O_CREAT | O_EXCL) by the process that trains into
#: the folder, held for the whole run, and holding that process's pid and host.
LOCK = "run.lock"


def pid_alive(pid):
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


def live_owner(run_dir):
    """The pid of the live process on this host that holds ``run_dir/run.lock``, or None (no lock, an
    unreadable one, another host's, or one left by a process that no longer runs)."""
    try:
        owner = json.loads((Path(run_dir) / LOCK).read_text())
        pid, host = int(owner["pid"]), str(owner["host"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if host != socket.gethostname() or pid == os.getpid() or not pid_alive(pid):
        return None
    return pid
