"""The memory a device has, and the one-line refusal of work that needs more: every size that a flag or a
config file can make huge (the model, the estimators' samples, chains and steps) is checked with
:func:`check_memory` before anything is allocated. A leaf module: it imports nothing of the package but
its errors."""

import os

import torch

from .errors import ConfigError


def memory_bytes(device):
    """The memory ``device`` has for new tensors: a GPU's total, the CPU's available memory; None if unknown."""
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


def gib(num_bytes):
    return f"{num_bytes / 2 ** 30:.1f} GiB"


def check_memory(need, device, what, fix, share=1.0):
    """Raise :class:`ConfigError` ``"{what} needs about N GiB but DEVICE has M GiB; {fix}"`` when ``need``
    bytes exceed ``share`` of the memory ``device`` has (nothing is checked where that is unknown)."""
    have = memory_bytes(device)
    if have is not None and need > have * share:
        raise ConfigError(f"{what} needs about {gib(need)} but {device} has {gib(have)}; {fix}")
