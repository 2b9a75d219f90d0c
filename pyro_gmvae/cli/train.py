"""``pyro-gmvae train``: the flags resolved onto the configs (library < dataset < preset < flags), the data
loaded, :func:`~pyro_gmvae.runs.train_run`, and the report of an interrupted run; ``--devices N`` relaunches
the command under torchrun."""

import inspect
import json
import os
import shlex
import sys
from pathlib import Path

from ..config import ModelConfig, TrainConfig
from ..data import load_data
from ..defaults import DATA_FIELDS, MODEL_FIELDS, TRAIN_FIELDS, resolve
from ..errors import ConfigError, GMVAEError, check_positive
from ..inference.distributed import launch, launched_by_torchrun, process_group
from ..registry import PRIORS
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
    if args.devices is not None:
        code = _launch(args)
        if code is not None:
            return code
    try:
        with process_group(_train_device(args, out)) as world:
            if not world.is_main:  # rank 0 reports; the others train quietly
                args.no_progress = True
            return _train(args, out, world)
    except KeyboardInterrupt:
        with sigint_ignored():  # a second Ctrl-C must not cut the report short with a traceback
            _report_interrupt(out)
        return 130


#: The data sets each data flag applies to.
_DATA_FLAG_DATASETS = {"data_dir": ("mnist", "fashion-mnist", "svhn"), "download": ("mnist", "fashion-mnist", "svhn"),
                       "data_path": ("file",)}


def _check_flags_apply(args, data_kw, model_config=None):
    """Refuse a flag given on the command line that the chosen data set or model would ignore."""
    dataset = data_kw.get("dataset", "digits")
    for key, datasets in _DATA_FLAG_DATASETS.items():
        if getattr(args, key, None) not in (None, False) and dataset not in datasets:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --dataset {dataset} (only to "
                              f"{', '.join(datasets)}); drop it, or choose one of those data sets")
    if model_config is None:
        return
    takes = inspect.signature(PRIORS[model_config.prior_name]).parameters
    for key in ("noise_dim", "num_super_clusters"):
        if getattr(args, key, None) is not None and key not in takes:
            raise ConfigError(f"--{key.replace('_', '-')} does not apply to --model {model_config.model} (prior "
                              f"{model_config.prior_name!r}); drop it, or choose a model that has it")


def _report_interrupt(out):
    resume = f"pyro-gmvae train --resume {shlex.quote(str(out))}"
    if (out / CHECKPOINT).exists():
        try:
            epoch = load_checkpoint(out)["epoch"]
        except GMVAEError:  # cannot happen with atomic writes; say so rather than crash
            print(f"\ninterrupted; {out / CHECKPOINT} cannot be read", file=sys.stderr)
            return
        print(f"\ninterrupted; the checkpoint of epoch {epoch} is saved in {out}. Resume with: {resume}",
              file=sys.stderr)
    elif (out / CONFIG).exists():
        print(f"\ninterrupted before the first checkpoint; start the run over with: {resume}", file=sys.stderr)
    else:
        print("\ninterrupted before training started; nothing was written", file=sys.stderr)


def _launch(args):
    """``--devices N``: start N processes with torchrun (returns their exit status), or None to train here."""
    check_positive("--devices", args.devices, integer=True)
    if launched_by_torchrun():
        if args.devices != int(os.environ["WORLD_SIZE"]):
            raise ConfigError(f"--devices {args.devices} but torchrun started {os.environ['WORLD_SIZE']} processes; "
                              "leave --devices out under torchrun (its --nproc-per-node and --nnodes decide)")
        return None
    if args.devices == 1:
        return None
    argv, skip = [], False
    for arg in args.argv:
        if skip:
            skip = False
        elif arg == "--devices":
            skip = True
        elif not arg.startswith("--devices="):
            argv.append(arg)
    return launch(args.devices, argv)


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


def _train(args, out, world=None):
    resume = args.resume is not None
    if not resume or args.overwrite:  # the folder first, before the data load (resume reads it first)
        prepare_run_dir(out, resume=resume, overwrite=args.overwrite)
    if resume:
        _check_resume_flags(args)
        model_config, train_config, data_spec = read_config(out)
        overrides = {k: getattr(args, k) for k in RESUMABLE_CHANGES if getattr(args, k) is not None}
        train_config = TrainConfig(**{**train_config.to_dict(), **overrides})
        check_device(train_config.device)
        _phase(args, f"loading the data: {_describe(data_spec)}")
        dataset = load_data(data_spec, train_config.device)
    else:
        model_kw, train_kw, data_kw = _resolve(args)
        TrainConfig(**train_kw)  # validate the flags before loading any data
        check_device(train_kw.get("device", "cpu"))
        _check_flags_apply(args, data_kw)
        _phase(args, f"loading the data: {_describe(data_kw)}")
        dataset = load_data(data_kw, train_kw.get("device", "cpu"), download=args.download)
        model_kw.setdefault("likelihood", dataset.likelihood)
        model_kw.setdefault("num_clusters", dataset.num_classes or 10)
        model_config = ModelConfig(data_dim=dataset.data_dim, **model_kw)
        _check_flags_apply(args, data_kw, model_config)
        train_config = TrainConfig(**train_kw)
        data_spec = data_kw
    trainer = train_run(model_config, train_config, dataset, out, data_spec=data_spec,
                        resume=resume, overwrite=args.overwrite, pretrained=args.pretrained,
                        progress=not args.no_progress)
    if world is not None and not world.is_main:
        return 0
    last = read_metrics(out)[-1:] or [{}]
    print(json.dumps({"run_dir": str(out), "epoch": trainer.epoch, **last[0]}))
    _next_steps(out)
    return 0


def _phase(args, message):
    """One line per phase of a command on stderr (stdout carries the JSON result), for a person at a
    terminal: --no-progress or a redirected stderr silences it, so that an error stays one line."""
    if not getattr(args, "no_progress", False) and sys.stderr.isatty():
        print(f"pyro-gmvae: {message}", file=sys.stderr, flush=True)


def _describe(data_spec):
    return ", ".join(f"{k}={v}" for k, v in data_spec.items() if k != "fingerprint") or "digits"


def _next_steps(out):
    """Where the files are and what to run next."""
    run = shlex.quote(str(out))
    files = ", ".join(p.name for p in sorted(Path(out).iterdir()) if not p.name.startswith("."))
    print(f"pyro-gmvae: the run is in {out}/ ({files})\n"
          f"next: pyro-gmvae evaluate {run}    # log-likelihood, k-hat, clustering scores\n"
          f"      pyro-gmvae sample {run}      # decoded samples per cluster -> {out}/samples.png\n"
          f"      pyro-gmvae plot {run}        # curves.png and latent.png\n"
          f"      pyro-gmvae predict {run} --data FILE.npy --out labels.csv", file=sys.stderr)
