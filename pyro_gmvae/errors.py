"""The library's exceptions: each message names the problem and the fix."""


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


def check_choice(kind, name, choices):
    """Raise :class:`ConfigError` unless ``name`` is one of ``choices``."""
    if name not in choices:
        raise ConfigError(
            f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(choices))}"
        )


def check_positive(name, value, *, strict=True, integer=False):
    """Raise :class:`ConfigError` unless ``value`` is positive (or >= 0 when not strict)."""
    if integer and (isinstance(value, bool) or int(value) != value):
        raise ConfigError(f"{name} must be an integer, got {value!r}")
    bad = value <= 0 if strict else value < 0
    if bad:
        bound = "> 0" if strict else ">= 0"
        raise ConfigError(f"{name} must be {bound}, got {value!r}; pass a value {bound}")
