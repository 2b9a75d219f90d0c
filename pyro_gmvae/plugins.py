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
``predict``, ``--resume`` and :func:`~pyro_gmvae.runs.load_run` import them again in a fresh process.
A component defined in a script run as ``__main__`` cannot be re-imported: move it into a module.
Checkpoints are read with ``torch.load(weights_only=True)`` and cannot run code, but loading a run imports
the modules its ``config.json`` names: open runs from sources you trust.
"""

import importlib
import os
import sys

from .errors import ConfigError
from .registry import ENTRY_POINT_GROUP, GUIDES, MODELS, PRIORS, load_entry_points

__all__ = ["ENTRY_POINT_GROUP", "component_modules", "import_plugins", "imported_plugins", "load_entry_points",
           "run_plugins"]

_imported = []  # modules imported through import_plugins, in order


def import_plugins(modules):
    """Import each module of ``modules`` (names such as ``"my_priors"`` or ``"pkg.priors"``) so that
    its registrations run; returns the names. Raises :class:`ConfigError` naming the module and the fix."""
    names = []
    for name in modules or ():
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a plugin is a module name such as 'my_priors', got {name!r}")
        try:
            _import(name)
        except ImportError as e:
            raise ConfigError(
                f"cannot import plugin module {name!r} ({type(e).__name__}: {e}); put the folder that holds "
                f"{name.split('.')[0]}.py on PYTHONPATH (or run from that folder), or install its package"
            ) from None
        if name not in _imported:
            _imported.append(name)
        names.append(name)
    return names


def _import(name):
    """``importlib.import_module``, falling back on the working folder, which ``python -m`` puts on the path
    but a console script does not (appended, so that it shadows nothing installed)."""
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as e:
        cwd = os.getcwd()
        if e.name != name.split(".")[0] or cwd in sys.path or "" in sys.path:
            raise
        sys.path.append(cwd)
        return importlib.import_module(name)


def imported_plugins():
    """The modules imported through :func:`import_plugins` so far, in order."""
    return list(_imported)


def component_modules(objects):
    """The modules, outside pyro_gmvae, that define ``objects`` (classes or functions) and can be
    imported again by name (a script run as ``__main__`` cannot)."""
    out = []
    for obj in objects:
        module = getattr(obj, "__module__", None)
        if not module or module.split(".")[0] == "pyro_gmvae" or module in out:
            continue
        if module == "__main__" or module not in sys.modules:
            continue
        out.append(module)
    return out


def run_plugins(model_config):
    """The plugin modules a run of ``model_config`` records: those imported with ``--import`` and the
    defining modules of its registered components."""
    parts = [PRIORS.get(model_config.prior_name), GUIDES.get(model_config.guide),
             MODELS.get(model_config.model)]
    found = component_modules([p for p in parts if p is not None])
    return list(dict.fromkeys([*imported_plugins(), *found]))
