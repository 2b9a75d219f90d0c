"""Plugins: priors, guides, models and networks of your own, from the shell and from saved runs.

A plugin is an ordinary Python module that registers components when imported
(:func:`~pyro_gmvae.models.register_prior`, :func:`~pyro_gmvae.inference.register_guide`,
:func:`~pyro_gmvae.models.register_model`, :func:`~pyro_gmvae.nn.register_network`). It reaches the
library in one of two ways:

- ``pyro-gmvae --import MODULE`` (every subcommand, repeatable), or :func:`import_plugins` in Python;
- a Python entry point in the group ``pyro_gmvae.plugins`` of an installed package, loaded on first
  need (a module, or a function called without arguments)::

      [project.entry-points."pyro_gmvae.plugins"]
      my_priors = "my_package.priors"

A run records the modules it needs in ``config.json`` (``"plugins"``): those given with ``--import``
and the defining modules of its registered components, so that ``evaluate``, ``sample``, ``plot``,
``predict``, ``--resume`` and :func:`~pyro_gmvae.runs.load_run` can import them again in a fresh process,
when the user trusts them (below).
A component defined in a script run as ``__main__`` cannot be re-imported: move it into a module.

Opening a run folder runs no code of its own: checkpoints are read with ``torch.load(weights_only=True)``,
and the modules its ``config.json`` records are imported only when the user says so. A recorded module is
imported when it is

- imported already (``--import MODULE``, or ``import MODULE`` / :func:`import_plugins` in Python),
- a module (or a submodule of one) that an installed package declares in the ``pyro_gmvae.plugins``
  entry-point group: installing that package was the decision to trust it, or
- trusted for this process with ``--trust-plugins`` on the command line, ``trust_plugins=True`` of
  :func:`~pyro_gmvae.runs.load_run`, or :func:`trust_plugins`.

Any other recorded module is refused in one line that names it and the flags, before anything is imported
or written. Modules are imported by absolute name from ``sys.path`` as it is (``PYTHONPATH``, installed
packages); the working folder is never searched implicitly (``pyro-gmvae`` drops the entry ``python -m``
adds for it), so that ``cd RUN && pyro-gmvae evaluate .`` cannot import a same-named file lying in the run
folder. The command line says on stderr which module it imports before importing it, so that a plugin that
hangs is visibly the plugin. A plugin that fails while imported is reported in one line naming it; set
``PYRO_GMVAE_DEBUG=1`` for its traceback.
"""
import contextlib

import importlib
import importlib.util
import os
import sys
import traceback

from .errors import ConfigError, GMVAEError
from .registry import ENTRY_POINT_GROUP, GUIDES, MODELS, NETWORKS, PRIORS, load_entry_points

__all__ = ["DEBUG_ENV", "ENTRY_POINT_GROUP", "check_recorded_plugins", "component_modules", "import_plugins",
           "imported_plugins", "load_entry_points", "run_plugins", "trust_plugins", "trusted_plugins"]

#: Set this environment variable to 1 to see the traceback of a plugin that fails to import (the error
#: line stays one line otherwise).
DEBUG_ENV = "PYRO_GMVAE_DEBUG"

_imported = []  # modules imported through import_plugins, in order
_trust_all = False  # --trust-plugins: every module a run records may be imported


def import_plugins(modules, *, announce=False):
    """Import each module of ``modules`` (absolute names such as ``"my_priors"`` or ``"pkg.priors"``) so
    that its registrations run; returns the names. Modules are found on ``sys.path`` as it is: the working
    folder is not searched unless it is on the path already. Raises :class:`ConfigError` naming the module,
    what went wrong and the fix (with ``PYRO_GMVAE_DEBUG=1``, the plugin's traceback is printed first). With
    ``announce=True`` (the command line), each module not imported yet is named on stderr before its import."""
    names = []
    for name in modules or ():
        _check_name(name)
        if name not in sys.modules:
            if announce and _origin(name) != _UNKNOWN:  # a module not found is refused next, in one line
                print(f"pyro-gmvae: importing plugin module {name} ({_origin(name)})", file=sys.stderr, flush=True)
            _import(name)
        if name not in _imported:
            _imported.append(name)
        names.append(name)
    return names


def _check_name(name):
    """Refuse anything but an absolute module name outside pyro_gmvae, in one line with the fix."""
    if not isinstance(name, str) or not name or name != name.strip():
        raise ConfigError(f"a plugin is a module name such as 'my_priors', got {name!r}")
    if name.endswith(".py"):
        raise ConfigError(f"plugin {name!r} is a file name; pass the module name ({name[:-3]!r}) and put the "
                          "folder that holds the file on PYTHONPATH")
    if name.startswith(".") or any(not part.isidentifier() for part in name.split(".")):
        raise ConfigError(f"plugin {name!r} is not an absolute module name (relative names and file paths "
                          "are refused); pass a name such as 'my_priors' or 'pkg.priors' and put the folder "
                          "that holds it on PYTHONPATH")
    if name.split(".")[0] == "pyro_gmvae":  # never needed (the package registers its own), and its
        # __main__ would start the command line again
        raise ConfigError(f"plugin {name!r} is a module of pyro-gmvae itself; pass the module of your own "
                          "that registers components")


def _import(name):
    try:
        importlib.import_module(name)
    except ModuleNotFoundError as e:
        if e.name is not None and (name == e.name or name.startswith(e.name + ".")):  # the plugin itself
            raise ConfigError(
                f"cannot import plugin module {name!r}: no module {e.name!r} on the Python path (the working "
                f"folder is not searched); put the folder that holds {e.name.replace('.', '/')}.py on PYTHONPATH "
                f"(e.g. PYTHONPATH=/path/to/that/folder), or install its package") from None
        _debug()
        raise ConfigError(f"plugin module {name!r} ({_origin(name)}) was found but imports {e.name!r}, which is "
                          f"not installed; install it (pip install ...), or fix the plugin's imports") from None
    except GMVAEError as e:  # a registration refused (a taken name, a bad argument)
        _debug()
        raise ConfigError(f"plugin module {name!r} ({_origin(name)}): {e}") from None
    except (Exception, SystemExit) as e:  # noqa: BLE001 - a plugin may raise anything while imported
        _debug()
        what = f"{type(e).__name__}: {' '.join(str(e).split())}"[:300]
        raise ConfigError(f"plugin module {name!r} ({_origin(name)}) failed while being imported ({what}); fix "
                          f"the plugin (set {DEBUG_ENV}=1 to see its traceback)") from None


def _origin(name):
    """Where the module ``name`` was found, for messages."""
    try:
        spec = importlib.util.find_spec(name)
    except Exception:  # noqa: BLE001 - finding a submodule imports its package, which may raise anything
        spec = None
    return getattr(spec, "origin", None) or _UNKNOWN


_UNKNOWN = "origin unknown"


def _debug():
    if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
        traceback.print_exc()


def trust_plugins(trust=True):
    """Let the runs opened by this process import every plugin module their ``config.json`` records
    (``--trust-plugins``); ``trust_plugins(False)`` takes it back. Only for run folders whose source you
    trust: importing a module runs its code."""
    global _trust_all
    _trust_all = bool(trust)


@contextlib.contextmanager
def trusted_plugins(trust=True):
    """:func:`trust_plugins` for the duration of a ``with`` block (``load_run(..., trust_plugins=True)``)."""
    before = _trust_all
    trust_plugins(trust or before)
    try:
        yield
    finally:
        trust_plugins(before)


def _entry_point_modules():
    from importlib.metadata import entry_points

    return {ep.value.split(":")[0].strip() for ep in entry_points(group=ENTRY_POINT_GROUP)}


def check_recorded_plugins(modules, where):
    """Refuse, before anything is imported, the modules of ``modules`` (recorded in ``where``, a run's
    config.json) that the user has not trusted: neither imported already, nor declared by an installed
    package as a ``pyro_gmvae.plugins`` entry point, nor allowed by :func:`trust_plugins`."""
    for name in modules:  # a name no run writes: the file was edited (or comes from someone else)
        try:
            _check_name(name)
        except ConfigError:
            raise ConfigError(f"{where} is corrupt (plugin {name!r} is not an absolute module name, of a module "
                              "outside pyro_gmvae); rewrite it or train again") from None
    if _trust_all:
        return
    declared = None
    untrusted = []
    for name in dict.fromkeys(modules):
        if name in sys.modules:
            continue
        declared = _entry_point_modules() if declared is None else declared
        if not any(name == m or name.startswith(m + ".") for m in declared):
            untrusted.append(name)
    if untrusted:
        listed = " ".join(f"--import {m}" for m in untrusted)
        raise ConfigError(f"{where} names the plugin modules {untrusted}, which opening a run does not import "
                          f"unless you say so (importing a module runs its code); if you trust the run's source, "
                          f"pass {listed} (or --trust-plugins; in Python load_run(..., trust_plugins=True))")


def imported_plugins():
    """The modules imported through :func:`import_plugins` so far, in order."""
    return list(_imported)


def component_modules(objects):
    """The modules, outside pyro_gmvae, that define ``objects`` (classes or functions, or module names)
    and can be imported again by name (a script run as ``__main__`` cannot)."""
    out = []
    for obj in objects:
        module = obj if isinstance(obj, str) else getattr(obj, "__module__", None)
        if not module or module.split(".")[0] == "pyro_gmvae" or module in out:
            continue
        if module == "__main__" or module not in sys.modules:
            continue
        out.append(module)
    return out


def run_plugins(model_config):
    """The plugin modules a run of ``model_config`` records: those imported with ``--import`` and the
    modules that define or registered its components (a network preset is a tuple of sizes: the module
    that registered it counts)."""
    parts = [PRIORS.get(model_config.prior_name), GUIDES.get(model_config.guide),
             MODELS.get(model_config.model), NETWORKS.origin(model_config.network)]
    found = component_modules([p for p in parts if p is not None])
    return list(dict.fromkeys([*imported_plugins(), *found]))
