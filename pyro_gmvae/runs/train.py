"""Training into a run folder (:func:`train_run`) and opening a trained run (:func:`load_run`)."""

from pathlib import Path

import pyro

from ..config import ModelConfig, TrainConfig
from ..data import Dataset
from ..errors import ConfigError, DataError, StorageError
from ..inference.distributed import check_plan
from ..inference.pretrain import check_start_data
from ..inference.training import Trainer, check_world_size
from ..models import MODELS, build
from ..plugins import trusted_plugins
from .checkpoint import CHECKPOINT, CONFIG, config_record, load_checkpoint, PRETRAINED, read_config, read_metrics, \
    rewrite_metrics, save_checkpoint, save_pretrained
from .data import check_data_fingerprint, data_fingerprint
from .folder import RunFolder, check_not_in_use, clear_run_dir, prepare_run_dir, remove_stale_temporaries
from .preflight import check_compatible, check_compatible_config, check_data_scale, check_device, \
    check_free_bits_objective, check_free_bits_site, check_model_size, check_resume_config, check_settings_apply, \
    check_step_memory, check_training_state
from .storage import storage_error, write_json


def train_run(model_config, train_config, dataset, out, *, data_spec=None, resume=False, overwrite=False,
              pretrained=None, progress=True, phases=None, log=print, plan=None, callbacks=None):
    """Train into the run folder ``out`` (see the module docstring); returns the :class:`Trainer`.

    Everything is checked before anything is written: the configs, the data against the model,
    the device, the folder, and the checkpoints to resume from or to take pretrained weights from.
    With ``resume=True`` the configs must be those of ``out/config.json`` (``epochs`` and
    ``device`` may change). ``progress`` shows the bars, ``phases`` the line per phase (default: as
    ``progress``). ``callbacks``: the :class:`Trainer`'s (:mod:`pyro_gmvae.inference.callbacks`). With ``plan``, the :class:`~pyro_gmvae.inference.distributed.World` of processes about
    to be started (``--devices N``), only check what each of them would, and return None.
    """
    out = Path(out)
    if plan is not None:  # the processes say their notes themselves
        log = _silent
    if not isinstance(model_config, ModelConfig) or not isinstance(train_config, TrainConfig):
        raise ConfigError("train_run takes a ModelConfig and a TrainConfig; build them with "
                          "ModelConfig(...) and TrainConfig(...)")
    if not isinstance(dataset, Dataset):
        raise DataError(f"train_run takes a Dataset, got {type(dataset).__name__}; wrap tensors with "
                        "pyro_gmvae.from_tensor(x)")
    check_device(train_config.device)
    check_settings_apply(model_config, train_config)
    prepare_run_dir(out, resume=resume, overwrite=overwrite)
    restart = resume and not (out / CHECKPOINT).exists()
    if resume:
        check_resume_config(out, model_config, train_config)
        check_data_fingerprint(out, dataset, log)
    check_model_size(model_config, train_config.device)
    check_step_memory(model_config, train_config, dataset.num_datapoints)
    pyro.set_rng_seed(train_config.seed)  # the initial weights are part of the run's result
    model, guide = build(model_config)
    trainer = Trainer(model, guide, train_config, pretrain_epochs=MODELS[model_config.model].pretrain_epochs,
                      progress=progress, phases=phases, callbacks=callbacks)
    trainer.check_data(dataset)  # NaN/Inf, range for Bernoulli, feature size, enough datapoints
    starts = hasattr(getattr(model, "prior", None), "init_from_gmm")  # a pretraining ends with a start
    if not resume and pretrained is None and trainer.pretrain_epochs and starts:
        check_start_data(train_config.init, dataset.x)  # before pretraining, not after it
    check_data_scale(dataset, train_config)
    check_free_bits_site(model, guide, train_config)
    check_free_bits_objective(model, guide, train_config, dataset.x.cpu())
    state = None
    if resume and not restart:
        state = load_checkpoint(out)
        check_training_state(state, out)
        check_compatible(state, model, guide, out)
        check_world_size(state, plan or trainer.world)
        if train_config.epochs < state["epoch"]:
            raise ConfigError(f"{out} is already at epoch {state['epoch']}, past --epochs {train_config.epochs}; "
                              f"pass --epochs {state['epoch']} or more")
    pre_state = None
    if pretrained is not None:
        pre_state = load_checkpoint(Path(pretrained) / PRETRAINED)
        check_compatible(pre_state, model, guide, pretrained)

    if state is None:  # a new run (or one started over) records what it trains on
        data_spec = {**(data_spec or {"dataset": dataset.name}), "fingerprint": data_fingerprint(dataset)}

    if plan is not None:
        check_plan(plan, train_config, dataset.num_datapoints)
        check_not_in_use(out)
        return None

    # -- from here on, files are written, by the folder's owner only: rank 0 under torchrun -------------
    trainer.world.barrier()  # every rank has checked the folder before rank 0 writes into it
    if not trainer.world.is_main:
        return _follow_run(trainer, dataset, state=state, pre_state=pre_state, pretrained=pretrained)
    saved = {"epoch": None if state is None else state["epoch"]}  # the checkpoint on disk, for a full disk's line
    try:
        with RunFolder(out, resume=resume, overwrite=overwrite, log=log) as folder:
            return _write_run(folder, model_config, train_config, dataset, trainer=trainer, model=model,
                              guide=guide, state=state, restart=restart, overwrite=overwrite, pre_state=pre_state,
                              pretrained=pretrained, data_spec=data_spec, log=log, saved=saved)
    except StorageError as e:
        cause = getattr(e, "cause", None)
        if cause is None:
            raise
        if saved["epoch"] is None:
            left = "the new run was not kept" + (f" (the run in {out} is unchanged)" if overwrite else "")
        elif state is not None and saved["epoch"] == state["epoch"]:
            left = f"the run is unchanged at epoch {saved['epoch']}"
        else:
            left = f"the run is saved at epoch {saved['epoch']} (pyro-gmvae train --resume {out} continues it)"
        raise storage_error(cause, e.path, left) from None


def _silent(message):
    pass


def _write_run(folder, model_config, train_config, dataset, *, trainer, model, guide, state, restart, overwrite,
               pre_state, pretrained, data_spec, log, saved):
    """The writing half of :func:`train_run`, as the owner of the folder (see :class:`RunFolder`);
    ``saved["epoch"]`` follows the checkpoint on disk."""
    out = folder.start()
    new_config = None
    if state is not None:
        remove_stale_temporaries(out)
        trainer.load_state_dict(state)
        history = state.get("metrics")
        if history is None:  # a checkpoint written before the rows travelled with it
            history = read_metrics(out)
        history = [row for row in history if row.get("epoch", 0) <= trainer.epoch]
        rewrite_metrics(out, history)
        _, saved_train, saved_data = read_config(out)
        if saved_train != train_config:  # new --epochs or --device: written with the checkpoint it describes
            new_config = config_record(model_config, train_config, saved_data)
        log(f"resuming {out} at epoch {trainer.epoch} of {train_config.epochs}")
    else:
        history = []
        if restart:
            log(f"{out} was stopped before its first checkpoint; starting it over")
        if overwrite or restart:
            clear_run_dir(out)
        write_json(out / CONFIG, config_record(model_config, train_config, data_spec or {"dataset": dataset.name}))
        if trainer.pretrain_once(dataset, pre_state, pretrained):
            save_pretrained(out, {"model": model.state_dict(), "guide": guide.state_dict(),
                                  "pretrain_report": trainer.pretrain_report})
        elif pre_state is not None:
            save_pretrained(out, pre_state)
        save_checkpoint(out, {**trainer.state_dict(), "metrics": history})
        if folder.staging is None:  # else the old run stays until the first epoch's checkpoint
            saved["epoch"] = 0

    def on_epoch_end(tr, row):
        nonlocal out, new_config
        history.append(row)
        save_checkpoint(out, {**tr.state_dict(), "metrics": history})
        if folder.staging is None:
            saved["epoch"] = tr.epoch
        if new_config is not None:  # only now: a config.json ahead of its checkpoint would contradict it
            write_json(out / CONFIG, new_config)
            new_config = None
        rewrite_metrics(out, history)
        out = folder.checkpointed()  # the first good checkpoint: an overwritten run is replaced now
        saved["epoch"] = tr.epoch

    trainer.fit(dataset, on_epoch_end=on_epoch_end)
    if new_config is not None:  # no epoch was left to train (a new --device only): the checkpoint stands as it is
        write_json(out / CONFIG, new_config)
    folder.checkpointed()
    return trainer


def _follow_run(trainer, dataset, *, state, pre_state, pretrained):
    """What a rank other than 0 does in :func:`train_run`: the same computation, without files. Its
    collective calls (the checkpoint's gather of random states, the epoch's loss) match rank 0's."""
    if state is not None:
        trainer.load_state_dict(state)
    else:
        trainer.pretrain_once(dataset, pre_state, pretrained)
        trainer.state_dict()  # rank 0's first checkpoint
    trainer.fit(dataset, on_epoch_end=lambda tr, row: tr.state_dict())
    return trainer


def load_run(run_dir, device="cpu", *, trust_plugins=False):
    """``(model, guide, model_config, train_config, data_spec)`` of a trained run, on ``device``.

    The plugin modules the run's config.json records are imported only if imported already, declared as
    ``pyro_gmvae.plugins`` entry points, or with ``trust_plugins=True`` (their code runs: only for runs from
    sources you trust); see :mod:`pyro_gmvae.plugins`."""
    with trusted_plugins(trust_plugins):
        model_config, train_config, data_spec = read_config(run_dir)
    check_device(device)
    check_model_size(model_config, device, run_dir=run_dir)  # an edited config.json may ask for terabytes
    state = load_checkpoint(run_dir)
    check_compatible_config(state, model_config, run_dir)  # before the model's tensors are allocated, where it can
    model, guide = build(model_config)
    check_compatible(state, model, guide, run_dir)
    model.load_state_dict(state["model"])
    guide.load_state_dict(state["guide"])
    return model.to(device).eval(), guide.to(device).eval(), model_config, train_config, data_spec
