"""The library's exceptions: each message names the problem and the fix."""

import math
import numbers


class GMVAEError(Exception):
    """Base class of every error raised on purpose by pyro_gmvae."""


class ConfigError(GMVAEError, ValueError):
    """A configuration value (size, rate, name) is invalid."""


class DataError(GMVAEError, ValueError):
    """The data cannot be used with the requested model."""


class CheckpointError(GMVAEError, ValueError):
    """A checkpoint or run folder is missing, corrupt or does not match."""


class DeviceError(GMVAEError, RuntimeError):
    """The requested device is not available."""


class TrainingError(GMVAEError, RuntimeError):
    """Training could not go on (for example a non-finite loss)."""


class StorageError(GMVAEError, OSError):
    """A file of a run cannot be written or read (a full disk, a read-only folder, a path through a file)."""


def check_choice(kind, name, choices):
    """Raise :class:`ConfigError` unless ``name`` is one of ``choices``."""
    if not isinstance(name, str) or name not in choices:
        raise ConfigError(
            f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}"
        )


def check_positive(name, value, *, strict=True, integer=False, maximum=None):
    """Raise :class:`ConfigError` unless ``value`` is a finite number (an ``int`` when ``integer``),
    positive (or >= 0 when not strict) and at most ``maximum``."""
    bound = "> 0" if strict else ">= 0"
    if integer and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
        hint = f"; pass {int(value)}" if isinstance(value, float) and value.is_integer() else ""
        raise ConfigError(f"{name} must be an integer, got {value!r}{hint}")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ConfigError(f"{name} must be a number, got {value!r}; pass a number {bound}")
    if not math.isfinite(value):
        raise ConfigError(f"{name} must be finite, got {value!r}; pass a number {bound}")
    bad = value <= 0 if strict else value < 0
    if bad:
        raise ConfigError(f"{name} must be {bound}, got {value!r}; pass a value {bound}")
    if maximum is not None and value > maximum:
        raise ConfigError(f"{name} must be at most {maximum:g}, got {value!r}; pass a smaller value")
