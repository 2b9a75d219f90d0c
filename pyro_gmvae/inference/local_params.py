"""Module-local parameters, scoped to the library: a trainer's model and guide keep their own tensors,
whatever Pyro's global param store holds, and the store the user sees is left as it was.

``PyroModule`` s look their parameters up by name in Pyro's param store (``prior.loc``,
``encoder$$$0.weight``), so two models of the same architecture in one process would share one entry:
the second model silently trains the first one's tensors. ``pyro.settings.set(module_local_params=True)``
cures that for the whole process; Pyro implements it as a private param store per module, entered
around every call. :class:`LocalParams` is the same thing per (model, guide) pair and scoped to the
library: a private store entered while the library trains or evaluates, so that the user's global
setting and store are untouched. Unlike the global setting it also serves ``JitTraceEnum_ELBO``,
whose compiled function looks parameters up in the store.

>>> import pyro, torch
>>> from pyro_gmvae import ModelConfig, build
>>> scope = LocalParams()
>>> model, guide = build(ModelConfig(data_dim=6, num_clusters=2, latent_dim=2, network="toy"))
>>> before = set(pyro.get_param_store().keys())
>>> with scope:
...     _ = guide(torch.rand(3, 6))
>>> set(pyro.get_param_store().keys()) == before, sorted(scope.state["params"])[:1]
(True, ['encoder$$$0.bias'])
"""

import pyro


class LocalParams:
    """A private Pyro param store, entered with ``with scope:`` (re-entrant).

    Inside, ``pyro.get_param_store()`` holds this scope's parameters only; on exit it holds the
    caller's again, and the scope keeps what was registered inside for the next entry."""

    def __init__(self):
        self.state = {"params": {}, "constraints": {}}
        self._depth = 0
        self._context = None

    def __enter__(self):
        if self._depth == 0:
            self._context = pyro.get_param_store().scope(self.state)
            self._context.__enter__()
        self._depth += 1
        return self

    def __exit__(self, exc_type, exc, tb):
        self._depth -= 1
        if self._depth == 0:
            context, self._context = self._context, None
            return context.__exit__(exc_type, exc, tb)
        return False
