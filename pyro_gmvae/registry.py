"""Components by name: the one place every registry lives.

Each kind of component (prior, guide, model, network, likelihood, cluster inference strategy,
initialisation strategy, pretraining recipe) is a :class:`Registry`. A module that defines a component
registers it (``@PRIORS.register("my-prior")``); configuration checks a name with ``REGISTRY.check(name)``,
which loads the installed ``pyro_gmvae.plugins`` entry points once before it gives up and then names the
fix. This module imports nothing of the package, so every other module can import it.

>>> toys = Registry("toy")
>>> @toys.register("square")
... def square(x):
...     return x * x
>>> toys["square"](3), "square" in toys, list(toys)
(9, True, ['square'])
>>> toys.register("square", abs)
Traceback (most recent call last):
...
pyro_gmvae.errors.ConfigError: a toy named 'square' is registered already; pick another name, or pass override=True to replace it
"""

import sys
import warnings
from collections.abc import Mapping

from .errors import ConfigError

ENTRY_POINT_GROUP = "pyro_gmvae.plugins"

_entry_points_loaded = False
_OMITTED = object()  # register(name) without an object: a decorator (None is a value: the "conv" preset's)


def load_entry_points():
    """Load the ``pyro_gmvae.plugins`` entry points of the installed packages (once per process).
    A plugin that fails to load is reported with a warning, not raised: it may not be the one needed."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            obj = ep.load()
            if callable(obj) and not isinstance(obj, type):
                obj()
        except Exception as e:  # a broken third-party plugin must not break the library
            warnings.warn(f"the {ENTRY_POINT_GROUP} entry point {ep.name!r} ({ep.value}) failed to load "
                          f"({type(e).__name__}: {e}); fix or uninstall its package", RuntimeWarning, stacklevel=2)


def _caller_module():
    """The name of the nearest calling module outside pyro_gmvae (None when the package registers)."""
    frame = sys._getframe(1)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module.split(".")[0] != "pyro_gmvae":  # the import machinery: a module of the package registers
            return None if module.split(".")[0] in ("importlib", "_frozen_importlib") else module
        frame = frame.f_back
    return None


class Registry(Mapping):
    """A read-only mapping ``name -> component`` with :meth:`register` and :meth:`check`.

    :param str kind: what a component is called in messages (``"prior"``); also the ``register_<kind>``
        function named in the fix.
    :param validate: optional ``validate(name, obj) -> obj`` run on registration (raise
        :class:`ConfigError` to refuse, or return the object to store).
    """

    def __init__(self, kind, validate=None):
        self.kind = kind
        self._validate = validate
        self._items = {}
        self._builtin = set()
        self._origins = {}  # name -> the module that registered it (outside the package)

    def register(self, name, obj=_OMITTED, *, override=False):
        """Add ``obj`` under ``name``; with ``obj`` omitted, a decorator. A name taken already is refused
        unless ``override=True`` (so a plugin cannot silently replace a built-in)."""
        if not isinstance(name, str) or not name:
            raise ConfigError(f"a {self.kind} needs a non-empty string name, got {name!r}")
        if obj is _OMITTED:
            return lambda o: self.register(name, o, override=override)
        if name in self._items and not override and self._items[name] is not obj and self._items[name] != obj:
            raise ConfigError(f"a {self.kind} named {name!r} is registered already; pick another name, "
                              "or pass override=True to replace it")
        if self._validate is not None:
            stored = self._validate(name, obj)
            obj = obj if stored is None else stored
        self._items[name] = obj
        self._origins[name] = _caller_module()
        return obj

    def origin(self, name):
        """The module (outside pyro_gmvae) that registered ``name``, or None: what a run records so that a
        fresh process can register the component again."""
        return self._origins.get(name) if name in self._items else None

    def builtin(self, name, obj):
        """Register one of the library's own components (marked so that :meth:`unregister` keeps it)."""
        self.register(name, obj)
        self._builtin.add(name)
        return obj

    def unregister(self, name):
        """Remove a component registered by a plugin or a test; the library's own are kept."""
        if name in self._builtin:
            raise ConfigError(f"{name!r} is a built-in {self.kind}; it cannot be removed")
        return self._items.pop(name)

    pop = unregister

    def snapshot(self):
        """A copy of the entries, for :meth:`restore` (tests that register components of their own)."""
        return dict(self._items)

    def restore(self, snapshot):
        """Put back the entries of :meth:`snapshot` (in place: modules holding this registry see it)."""
        self._items.clear()
        self._items.update(snapshot)

    def check(self, name):
        """Raise :class:`ConfigError` unless ``name`` is registered (after the entry points are loaded);
        the message lists the names and says how to supply one's own."""
        if name in self._items:
            return
        load_entry_points()
        if name in self._items:
            return
        raise ConfigError(
            f"unknown {self.kind} {name!r}; choose one of: {', '.join(sorted(self._items))}. If {name!r} is your "
            f"own, the module that registers it (register_{self.kind}({name!r}, ...)) must be imported first: pass --import MODULE to pyro-gmvae (or "
            f"call pyro_gmvae.import_plugins(['MODULE'])), or declare it as a {ENTRY_POINT_GROUP!r} entry point "
            "of an installed package")

    def __getitem__(self, name):
        return self._items[name]

    def __iter__(self):
        return iter(self._items)

    def __len__(self):
        return len(self._items)

    def __repr__(self):
        return f"Registry({self.kind!r}, {sorted(self._items)})"


#: Priors ``cls(latent_dim=, num_clusters=, noise_dim=, hidden_dim=, num_super_clusters=)``.
PRIORS = Registry("prior")
#: Guide head families ``cls(in_dim, dim)``.
GUIDES = Registry("guide")
#: Models: a ``ModelSpec`` (default prior, pretraining epochs).
MODELS = Registry("model")
#: Network presets: MLP hidden sizes in encoder order (``None``: the convolutional pair).
NETWORKS = Registry("network")
#: Observation likelihoods of the decoder: a one-line description each.
LIKELIHOODS = Registry("likelihood")
#: Cluster inference strategies (``ClusterInference`` subclasses).
CLUSTER_INFERENCE = Registry("cluster_inference")
#: Initialisation strategies ``fn(codes, num_clusters, seed) -> (labels, weights, means, scales, report)``.
INIT_STRATEGIES = Registry("init")
#: Autoencoder pretraining recipes.
PRETRAIN_RECIPES = Registry("pretrain_recipe")
