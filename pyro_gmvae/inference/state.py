"""The training state a checkpoint carries besides the weights: the optimiser's format (and the reader of
the older one), the random state of every generator, and the number of processes that wrote it."""

import random

import numpy as np
import torch

from ..errors import CheckpointError

#: The optimiser state of a checkpoint: ``torch.optim.Adam`` and ``LambdaLR`` state dicts.
OPTIM_FORMAT = "torch-adam-lambdalr-1"


def check_world_size(state, world):
    """Raise :class:`CheckpointError` unless the checkpoint was written by as many processes as train now
    (each rank's random state travels in it)."""
    saved = state.get("world_size", 1)
    if saved != world.size:
        raise CheckpointError(f"the checkpoint was written by a run on {saved} process(es) but {world.size} train now; "
                              f"resume it with {saved} (pyro-gmvae train --devices {saved} --resume ..., or torchrun "
                              f"--nproc-per-node {saved}), so that every process's random state continues")


def pyro_optim_state_to_torch(old, model, guide):
    """A checkpoint's optimiser state written by ``pyro.optim.LambdaLR.get_state()`` (one Adam per parameter,
    keyed by Pyro's parameter name such as ``decoder.net$$$0.weight``) as the state dicts of one
    ``torch.optim.Adam`` over ``model`` then ``guide`` parameters and its ``LambdaLR``."""
    problem = "it is not a dict of per-parameter optimiser states"
    if isinstance(old, dict) and old and all(isinstance(v, dict) and {"optimizer", "scheduler"} <= set(v)
                                             for v in old.values()):
        names = [n for m in (model, guide) for n, _ in m.named_parameters()]
        by_name = {k.replace("$$$", "."): v for k, v in old.items()}
        unknown = sorted(set(by_name) - set(names))
        if not unknown:
            first = next(iter(by_name.values()))
            group = dict(first["optimizer"]["param_groups"][0], params=list(range(len(names))))
            per_param = {i: by_name[n]["optimizer"]["state"][0] for i, n in enumerate(names)
                         if n in by_name and by_name[n]["optimizer"]["state"]}
            return {"optimizer": {"state": per_param, "param_groups": [group]}, "scheduler": first["scheduler"]}
        problem = f"it names parameters this model does not have ({', '.join(unknown[:3])})"
    raise CheckpointError(f"the optimiser state of the checkpoint cannot be read: {problem}; resume from a "
                          "checkpoint that pyro-gmvae train wrote for this configuration, or start over with "
                          "--overwrite")


def rng_state():
    state = {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state):
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
