"""``pyro-gmvae train``: the flags resolved onto the configs (library < dataset < preset < flags), the data
loaded, :func:`~pyro_gmvae.runs.train_run`, and the report of an interrupted run; ``--devices N`` relaunches
the command under torchrun."""

import inspect
import json
import os
import shlex
import sys
import time
from pathlib import Path

import torch

from ..config import ModelConfig, TrainConfig
from ..data import load_data
from ..defaults import DATA_FIELDS, MODEL_FIELDS, TRAIN_FIELDS, resolve
from ..errors import ConfigError, DataError, GMVAEError, check_positive
from ..inference.callbacks import Callback
from ..inference.distributed import (World, end_process, launch, launched_by_torchrun, launched_by_us, peer_lost,
                                     process_group)
from ..registry import MODELS, PRIORS
from ..runs import (CHECKPOINT, CONFIG, RESUMABLE_CHANGES, check_device, load_checkpoint, prepare_run_dir, read_config,
                    read_metrics, sigint_ignored, train_run)
from .parser import DEFAULT_OUT


def _run_dir(args):
    """The run folder of ``train``: ``--resume RUN_DIR`` or ``--out`` (they must agree)."""
    if isinstance(args.resume, str):
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise ConfigError(f"--resume {args.resume} and --out {args.out} name two folders; pass one of them")
        return Path(args.resume)
    return Path(args.out if args.out is not None else DEFAULT_OUT)


def _check_resume_flags(args):
    """``--resume`` takes every setting from RUN_DIR/config.json: refuse flags it would ignore."""
    ignored = [f"--{k.replace('_', '-')}" for k in (*MODEL_FIELDS, *TRAIN_FIELDS, *DATA_FIELDS, "preset", "pretrained")
               if k not in RESUMABLE_CHANGES and getattr(args, k, None) is not None]
    ignored += [f"--{k}" for k in ("download",) if getattr(args, k, False)]
    if ignored:
        raise ConfigError(f"--resume continues a run with the settings in its config.json, so {', '.join(ignored)} "
                          f"would be ignored; drop them (only {' and '.join('--' + k for k in RESUMABLE_CHANGES)} may change) or "
                          "start a "
                          "new run with --out")


def _resolve(args):
    """Merge library defaults < dataset defaults < preset < flags; returns (model_kw, train_kw, data_kw)."""
    return resolve(vars(args), args.preset)


def cmd_train(args):
    out = _run_dir(args)
    started = time.time()
    if launched_by_us():  # the summary's wall time counts from the launcher's start
        try:
            started = float(os.environ.get(STARTED_ENV, started))
        except ValueError:
            pass
    if args.force_devices and (args.devices or 1) == 1:
        raise ConfigError("--force-devices goes with --devices N above the number of cores or GPUs; drop it")
    if args.devices is not None:
        code = _launch(args, out, started)
        if code is not None:
            return code
    world = None
    try:
        with process_group(_train_device(args, out)) as world:
            if not world.is_main:  # rank 0 reports; the others train quietly
                args.no_progress, args.quiet = True, True
            code = _train(args, out, world, started=started)
        if world.distributed:  # the group is torn down and the files closed: skip the interpreter's teardown of
            end_process(code)  # gloo's threads, which now and then aborts a finished process ("terminate called")
        return code
    except KeyboardInterrupt:
        with sigint_ignored():  # a second Ctrl-C must not cut the report short with a traceback
            if world is None or (world.is_main and not launched_by_us()):  # else the launcher reports
                _report_stop(out, _resume_command(out, world, devices=None if world else args.devices))
            if world is not None and world.distributed:
                end_process(130)
        return 130
    except RuntimeError as e:  # under torchrun: another process stopped (killed, out of memory)
        if world is None or not world.distributed or not peer_lost(e):
            raise
        with sigint_ignored():
            if not launched_by_us():
                _report_stop(out, _resume_command(out, world), f"pyro-gmvae train: error: process {world.rank} of "
                                                               f"{world.size} lost the others (one of them stopped)")
            end_process(1)


def _resume_command(out, world=None, devices=None):
    """The command that continues ``out`` in as many processes as trained it."""
    run = shlex.quote(str(out))
    size = devices or (world.size if world is not None else 1)
    if size == 1:
        return f"pyro-gmvae train --resume {run}"
    if world is not None and world.distributed and not launched_by_us():  # started by torchrun itself
        return f"torchrun --nproc-per-node {size} -m pyro_gmvae train --resume {run}"
    return f"pyro-gmvae train --devices {size} --resume {run}"


#: The data sets each data flag applies to.
_DATA_FLAG_DATASETS = {"data_dir": ("mnist", "fashion-mnist", "svhn"), "download": ("mnist", "fashion-mnist", "svhn"),
                       "data_path": ("file",)}


def _check_flags_apply(args, data_kw, model_config=None, train_config=None):
    """Refuse a flag given on the command line that the chosen data set or model would ignore."""
    dataset = data_kw.get("dataset", "digits")
    for key, datasets in _DATA_FLAG_DATASETS.items():
        if getattr(args, key, None) not in (None, False) and dataset not in datasets:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --dataset {dataset} (only to "
                              f"{', '.join(datasets)}); drop it, or choose one of those data sets")
    if model_config is None:
        return
    takes = inspect.signature(PRIORS[model_config.prior_name]).parameters
    for key, name in (("noise_dim", "noise_dim"), ("num_super_clusters", "num_super_clusters"),
                      ("prior_hidden_dim", "hidden_dim")):
        if getattr(args, key, None) is not None and name not in takes:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --model {model_config.model} (prior "
                              f"{model_config.prior_name!r}); drop it, or choose a model that has it")
    _check_train_flags_apply(args, model_config, train_config)


#: Flags read only by the pretraining and the start it ends with.
_PRETRAIN_FLAGS = ("pretrain_lr", "pretrain_recipe", "pretrain_batch_size", "init", "umap_epochs", "umap_neighbors",
                   "init_guide_scale", "init_warmup_epochs", "init_warmup_label_weight")


def _check_train_flags_apply(args, model_config, train_config):
    """Refuse a training flag given on the command line that this run would ignore, as a flag of another model
    is refused (the library's defaults and presets may set them; only what was typed is refused)."""
    given = [k for k in _PRETRAIN_FLAGS if getattr(args, k, None) is not None]
    pretrain_epochs = train_config.pretrain_epochs
    if pretrain_epochs is None:
        pretrain_epochs = MODELS[model_config.model].pretrain_epochs
    if given and (args.pretrained is not None or not pretrain_epochs):
        why = (f"--pretrained {args.pretrained} takes its weights instead of pretraining" if args.pretrained
               is not None else "this run does not pretrain (--pretrain-epochs 0)")
        flags = _flags(given)
        verb, subject, obj = ("sets", "it", "it") if len(given) == 1 else ("set", "they", "them")
        raise ConfigError(f"{flags} {verb} the pretraining and its start, but {why}, so {subject} would be ignored; "
                          f"drop {obj}" + ("" if args.pretrained is not None else ", or pass --pretrain-epochs N"))
    given = [k for k in ("free_bits_site", "free_bits_group") if getattr(args, k, None) is not None]
    if given and train_config.free_bits <= 0:
        flags, (verb, it) = _flags(given), (("shapes", "it") if len(given) == 1 else ("shape", "them"))
        raise ConfigError(f"{flags} {verb} the free-bits constraint, which is off (--free-bits 0), so {it} would be "
                          f"ignored; drop {it}, or pass --free-bits LAMBDA")


def _flags(keys):
    return " and ".join("--" + k.replace("_", "-") for k in keys)


def _report_stop(out, resume, what="interrupted"):
    """One line on stderr: why the run stopped, what is saved, and the command that continues it."""
    if what == "interrupted":  # after the terminal's ^C
        what = "\ninterrupted"
    if (out / CHECKPOINT).exists():
        try:
            epoch = load_checkpoint(out)["epoch"]
        except GMVAEError:  # cannot happen with atomic writes; say so rather than crash
            print(f"{what}; {out / CHECKPOINT} cannot be read", file=sys.stderr)
            return
        print(f"{what}; the checkpoint of epoch {epoch} is saved in {out}. Resume with: {resume}", file=sys.stderr)
    elif (out / CONFIG).exists():
        print(f"{what} before the first checkpoint; start the run over with: {resume}", file=sys.stderr)
    else:
        print(f"{what} before training started; nothing was written", file=sys.stderr)


#: When the ``--devices N`` launcher started (its processes' summary counts the wall time from then).
STARTED_ENV = "PYRO_GMVAE_STARTED"


def _launch(args, out, started):
    """``--devices N``: check the run as its N processes would, start them with torchrun and report for
    them (returns the exit status), or None to train in this process."""
    check_positive("--devices", args.devices, integer=True)
    if launched_by_torchrun():
        if args.devices != int(os.environ["WORLD_SIZE"]):
            raise ConfigError(f"--devices {args.devices} but torchrun started {os.environ['WORLD_SIZE']} processes; "
                              "leave --devices out under torchrun (its --nproc-per-node and --nnodes decide)")
        return None
    if args.devices == 1:
        return None
    _check_devices(args, out)
    _train(args, out, plan=World(0, args.devices))  # every refusal that needs no process, once, here
    argv, skip = [], False
    for arg in args.argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices=") and arg != "--force-devices":
            argv.append(arg)
    os.environ[STARTED_ENV] = repr(started)
    try:
        result = launch(args.devices, argv)
    finally:
        os.environ.pop(STARTED_ENV, None)
    if result.errors:
        for message in result.errors:
            print(f"pyro-gmvae train: error: {' '.join(message.split())}", file=sys.stderr)
        return 2
    if result.code:
        with sigint_ignored():
            resume = _resume_command(out, devices=args.devices)
            _report_stop(out, resume, "interrupted" if result.code >= 128 else f"pyro-gmvae train: error: "
                                                                               f"{result.stopped}")
    return result.code


def _check_devices(args, out):
    """Refuse more processes than this machine has GPUs (--device cuda) or CPU cores, unless forced."""
    device = _train_device(args, out)
    check_device(device)  # no GPU at all: say so, rather than "0 GPUs"
    if torch.device(device).type == "cuda":
        available, what = torch.cuda.device_count(), "GPU"
    else:
        available, what = os.cpu_count() or 1, "CPU core"
    what += "" if available == 1 else "s"
    if args.devices > available and not args.force_devices:
        raise ConfigError(f"--devices {args.devices} but this machine has {available} {what}; pass --devices "
                          f"{available} or fewer, or add --force-devices to start {args.devices} processes anyway")


def _train_device(args, out):
    """The device of the run about to train, for the process group's backend (nccl on cuda, else gloo)."""
    if args.device is not None:
        return args.device
    if args.resume is not None:
        try:
            return json.loads((out / "config.json").read_text())["train"].get("device", "cpu")
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return "cpu"  # read_config reports a bad file later, with its fix
    return "cpu"


def _train(args, out, world=None, *, plan=None, started=None):
    """Train into ``out``; with ``plan`` (the processes about to be started) only check, as they would."""
    resume = args.resume is not None
    args.held = _HeldLines()  # the command's own phase lines, for a log file
    callbacks = [args.held]
    if getattr(args, "tensorboard", None) is not None:  # its package and folder checked before any work
        from ..tracking import TensorBoardCallback

        callbacks.append(TensorBoardCallback(args.tensorboard))
    if not resume or args.overwrite:  # the folder first, before the data load (resume reads it first)
        prepare_run_dir(out, resume=resume, overwrite=args.overwrite)
    if resume:
        _check_resume_flags(args)
        model_config, train_config, data_spec = read_config(out)
        overrides = {k: getattr(args, k) for k in RESUMABLE_CHANGES if getattr(args, k) is not None}
        train_config = TrainConfig(**{**train_config.to_dict(), **overrides})
        check_device(train_config.device)
        if plan is None:  # the processes say it
            _phase(args, f"loading the data: {_describe(data_spec)}")
        dataset = load_data(data_spec, train_config.device)
    else:
        model_kw, train_kw, data_kw = _resolve(args)
        TrainConfig(**train_kw)  # validate the flags before loading any data
        check_device(train_kw.get("device", "cpu"))
        _check_flags_apply(args, data_kw)
        if plan is None:
            _phase(args, f"loading the data: {_describe(data_kw)}")
        try:
            dataset = load_data(data_kw, train_kw.get("device", "cpu"), download=args.download)
        except DataError as e:  # the library names the keyword and the flag; the command line, the flag
            raise DataError(str(e).replace("download=True (--download)", "--download")) from None
        model_kw.setdefault("likelihood", dataset.likelihood)
        model_kw.setdefault("num_clusters", dataset.num_classes or 10)
        model_config = ModelConfig(data_dim=dataset.data_dim, **model_kw)
        train_config = TrainConfig(**train_kw)
        _check_flags_apply(args, data_kw, model_config, train_config)
        data_spec = data_kw
    trainer = train_run(model_config, train_config, dataset, out, data_spec=data_spec,
                        resume=resume, overwrite=args.overwrite, pretrained=args.pretrained,
                        progress=_bars_shown(args), phases=_phases_shown(args), plan=plan, callbacks=callbacks)
    if plan is not None or (world is not None and not world.is_main):
        return 0
    _next_steps(out, clustered=bool(trainer.model.cluster_sites))
    print(_summary(out, trainer, model_config, train_config, time.time() - (started or time.time())),
          flush=True)
    return 0


def _summary(out, trainer, model_config, train_config, seconds):
    """The one line a run ends on (its numbers stay in metrics.jsonl)."""
    last = (read_metrics(out)[-1:] or [{}])[0]
    parts = [f"{model_config.model}, epoch {trainer.epoch} of {train_config.epochs}"]
    scores = [f"{name} {last[key]:.3f}" for name, key in (("acc", "acc"), ("NMI", "nmi"), ("ARI", "ari"))
              if isinstance(last.get(key), (int, float))]
    if scores:
        parts.append(", ".join(scores))
    elif isinstance(last.get("elbo"), (int, float)):
        parts.append(f"ELBO {last['elbo']:.2f} nats")
    if isinstance(last.get("num_used_clusters"), int):
        parts.append(f"{last['num_used_clusters']} of {model_config.num_clusters} clusters used")
    minutes, rest = divmod(round(seconds), 60)
    parts.append(f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s")
    return f"pyro-gmvae: trained {out}: " + "; ".join(parts)


def _phases_shown(args):
    """The training's phase lines (pretraining, the start, the warm-up, training) go to stderr, a terminal or a
    log file alike (--no-progress hides only the bars): a log says what a long start (UMAP: minutes) is doing.
    They begin after every check, so a refused command still says one line. Rank 0 only."""
    return not getattr(args, "quiet", False)


def _bars_shown(args):
    """The progress bars only on a terminal: redirected to a file, a bar is a stream of carriage returns."""
    return not args.no_progress and sys.stderr.isatty()


def _phase(args, message):
    """A line of the command itself on stderr (stdout carries the summary), before the checks of the run: on a
    terminal at once; otherwise held until training begins (:class:`_HeldLines`), so that a refusal redirected to
    a file stays one line."""
    if not _phases_shown(args):
        return
    line = f"pyro-gmvae: {message}"
    if sys.stderr.isatty() or getattr(args, "held", None) is None:
        print(line, file=sys.stderr, flush=True)
    else:
        args.held.lines.append(line)


class _HeldLines(Callback):
    """The command's phase lines that a redirected stderr gets once every check has passed and training begins."""

    def __init__(self):
        self.lines = []

    def on_train_begin(self, trainer, data):
        for line in self.lines:
            print(line, file=sys.stderr, flush=True)
        self.lines.clear()


def _describe(data_spec):
    return ", ".join(f"{k}={v}" for k, v in data_spec.items() if k != "fingerprint") or "digits"


def _next_steps(out, clustered=True):
    """Where the files are and what to run next (sample and predict need clusters: not for a plain VAE)."""
    run = shlex.quote(str(out))
    files = ", ".join(p.name for p in sorted(Path(out).iterdir()) if not p.name.startswith("."))
    steps = [f"pyro-gmvae evaluate {run}    # log-likelihood, k-hat, clustering scores"]
    if clustered:
        steps.append(f"pyro-gmvae sample {run}      # decoded samples per cluster -> {out}/samples.png")
    steps.append(f"pyro-gmvae plot {run}        # curves.png and latent.png")
    if clustered:
        steps.append(f"pyro-gmvae predict {run} --data FILE.npy --out labels.csv")
    print(f"pyro-gmvae: the run is in {out}/ ({files})\nnext: " + "\n      ".join(steps), file=sys.stderr)
