"""The ``pyro-gmvae`` command line: ``train``, ``evaluate``, ``sample``, ``plot`` and ``predict``.

Every flag maps onto a field of :class:`~pyro_gmvae.config.ModelConfig` or
:class:`~pyro_gmvae.config.TrainConfig`. Defaults come in three layers: the library's defaults,
then the dataset's (``DATASET_DEFAULTS``), then a ``--preset``; a flag given on the command line
always wins. The defaults live in :mod:`pyro_gmvae.defaults`, which the Python API reads too.

Every subcommand takes ``--import MODULE`` (a plugin that registers priors, guides...; see
:mod:`pyro_gmvae.plugins`) and ``--threads N``.
"""

#: The top-level help, in plain words (the module docstring above is reST for the API docs).
DESCRIPTION = ("Deep generative clustering (VaDE, GMVAE) with Pyro: train a model into a run folder, then "
               "evaluate it, sample from it, plot it, or cluster new data with it.")
EPILOG = ("A typical session: pyro-gmvae train --out runs/digits; pyro-gmvae evaluate runs/digits; "
          "pyro-gmvae sample runs/digits; pyro-gmvae plot runs/digits; "
          "pyro-gmvae predict runs/digits --data new.npy --out labels.csv. "
          "Each subcommand's --help lists its flags and their defaults.")

import argparse
import json
import shlex
import sys
from pathlib import Path

from .data import load_data
from .defaults import DATA_FIELDS, DATASET_DEFAULTS, MODEL_FIELDS, PRESETS, TRAIN_FIELDS  # noqa: F401
from .errors import GMVAEError


def _default(field, otherwise=None):
    """``default X``, or ``default X on digits, Y on synthetic, Z otherwise`` where the data sets differ:
    read from the dataclasses and DATASET_DEFAULTS, so the help cannot drift from what runs."""
    import dataclasses

    from .config import ModelConfig, TrainConfig
    from .data import DATASETS

    library = {f.name: f.default for cls in (ModelConfig, TrainConfig) for f in dataclasses.fields(cls)}
    base = library.get(field) if otherwise is None else otherwise
    groups = {}
    for dataset in DATASETS:
        value = DATASET_DEFAULTS.get(dataset, {}).get(field, base)
        groups.setdefault(_show(value), []).append(dataset)
    if len(groups) == 1:
        return f"default {next(iter(groups))}"
    common = _show(base) if _show(base) in groups else max(groups, key=lambda v: len(groups[v]))
    parts = [f"{value} on {', '.join(names)}" for value, names in groups.items() if value != common]
    return f"default {'; '.join(parts)}; {common} otherwise"


def _show(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _common_flags():
    """``--import`` and ``--threads``, shared by every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                        help="import MODULE first, so that the priors, guides, models or networks it registers "
                             "can be named (repeatable); train records it in config.json and the other "
                             "commands import it again")
    common.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (torch.set_num_threads; default: torch's choice, "
                             "usually one per core)")
    return common


def _add_data_flags(p, with_dataset=True):
    from .data import DATASETS

    if with_dataset:
        p.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default digits: embedded, no download)")
        p.add_argument("--data-dir", help="folder with the IDX files of mnist/fashion-mnist (.gz or not), "
                                          "or the torchvision root for svhn; read offline")
        p.add_argument("--data-path", help="a .npy (array x) or .npz (x, optional labels y) file for --dataset file")
        p.add_argument("--num-datapoints", type=int, help="use a seeded random subset of this many datapoints")
        p.add_argument("--download", action="store_true", help="let torchvision download mnist/fashion-mnist/svhn")
    p.add_argument("--split", choices=["train", "test", "all"], help="which part of the dataset (default all)")
    p.add_argument("--device", help="cpu (default) or cuda")


def build_parser():
    from .inference.amortized import GUIDES
    from .inference.cluster_inference import CLUSTER_INFERENCE
    from .inference.pretrain import INIT_STRATEGIES, PRETRAIN_RECIPES
    from .models import MODELS, PRIORS
    from .nn import NETWORK_PRESETS

    parser = argparse.ArgumentParser(prog="pyro-gmvae", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,sample,plot,predict}")
    common = _common_flags()

    t = sub.add_parser("train", help="train a model into a run folder", parents=[common],
                       description="Train VaDE, GMVAE or the VAE baseline with SVI and TraceEnum_ELBO; writes "
                                   "config.json, metrics.jsonl and checkpoint.pt into --out.")
    t.add_argument("--preset", help=f"the papers' settings: {', '.join(PRESETS)} (flags override)")
    t.add_argument("--model", help=f"one of {', '.join(MODELS)} ({_default('model')})")
    _add_data_flags(t)
    t.add_argument("--num-clusters", type=int, help="K, the number of clusters (default: the number of classes, or 10)")
    t.add_argument("--latent-dim", type=int, help=f"size of the continuous latent z ({_default('latent_dim')})")
    t.add_argument("--noise-dim", type=int, help="size of GMVAE's w (default: latent dim)")
    t.add_argument("--num-super-clusters", type=int, help="S, super-clusters of --model hierarchical")
    t.add_argument("--prior-hidden-dim", type=int, help="hidden units of GMVAE's prior net (default 100)")
    t.add_argument("--prior", help=f"swap the prior: {', '.join(PRIORS)} (default: the model's own)")
    t.add_argument("--guide", help=f"guide family: {', '.join(GUIDES)} (default diagonal)")
    t.add_argument("--likelihood", choices=["bernoulli", "normal"], help="default: the dataset's")
    t.add_argument("--fixed-weights", action="store_true", default=None,
                   help="keep the mixture's cluster weights uniform, 1/K (as the official VaDE MNIST code); "
                        "the mixture prior only")
    t.add_argument("--network", help=f"network preset: {', '.join(NETWORK_PRESETS)} ({_default('network')})")
    t.add_argument("--epochs", type=int, help=f"training epochs after pretraining ({_default('epochs')})")
    t.add_argument("--batch-size", type=int, help=f"minibatch size ({_default('batch_size')})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate ({_default('lr')})")
    t.add_argument("--lr-decay", type=float, help="multiply the learning rate by this every --lr-decay-every "
                                                  f"epochs ({_default('lr_decay')})")
    t.add_argument("--lr-decay-every", type=int, help="epochs between learning-rate decays (default 10)")
    t.add_argument("--min-lr", type=float, help="floor of the decayed learning rate (default 2e-4)")
    t.add_argument("--adam-eps", type=float, help="Adam's epsilon (default 1e-4, as VaDE)")
    t.add_argument("--num-particles", type=int, help="M vectorized Monte Carlo samples per datapoint (default 1)")
    t.add_argument("--jit", action="store_true", default=None, help="use JitTraceEnum_ELBO")
    t.add_argument("--compute-dtype", choices=["float32", "bfloat16"],
                   help="run the encoder and decoder networks under bfloat16 autocast (the ELBO stays float32); "
                        "default float32")
    t.add_argument("--seed", type=int, help="random seed (default 0)")
    t.add_argument("--pretrain-epochs", type=int, help="autoencoder pretraining epochs before the GMM "
                                                       "initialisation, 0 disables ("
                                                       + _default("pretrain_epochs", "the model's: vade, gmvae and "
                                                                                     "hierarchical 50") + ")")
    t.add_argument("--pretrain-lr", type=float, help="pretraining (and warm-up) learning rate (default 1e-3)")
    t.add_argument("--pretrain-recipe", choices=list(PRETRAIN_RECIPES),
                   help="autoencoder loss: likelihood (the model's own), denoise (20%% of the inputs masked), "
                        f"mse (the public PyTorch port's) ({_default('pretrain_recipe', 'likelihood')})")
    t.add_argument("--pretrain-batch-size", type=int, help="pretraining minibatch size (default --batch-size)")
    t.add_argument("--init", choices=list(INIT_STRATEGIES),
                   help="mixture initialisation from the codes: gmm (the paper's diagonal GMM) or umap (ours: "
                        "UMAP of the codes, a GMM on it, each cluster's moments) "
                        f"({_default('init', 'gmm')})")
    t.add_argument("--init-guide-scale", type=float,
                   help="start q(z|x) with this constant standard deviation (default: as initialised)")
    t.add_argument("--init-warmup-epochs", type=int,
                   help="epochs with the clusters fixed at the initialisation's labels before they are "
                        f"enumerated ({_default('init_warmup_epochs', 0)})")
    t.add_argument("--pretrained", help="take the pretrained weights cached in this earlier run folder")
    t.add_argument("--free-bits", type=float, help="minimum information constraint lambda in nats, 0 = off "
                                                   f"({_default('free_bits')})")
    t.add_argument("--free-bits-site", help="the constrained site: cluster (default), z or w")
    t.add_argument("--free-bits-group", help="site (default) or dim (per-dimension, guided sites only)")
    t.add_argument("--cluster-inference", choices=list(CLUSTER_INFERENCE),
                   help="how training infers the cluster: exact (summed out in the model), amortized (a q(c|x) "
                        "head, summed over), relaxed (Gumbel-softmax), score-function (sampled, REINFORCE with a "
                        "learned baseline); evaluation sums the cluster out exactly whatever trained the model "
                        "(default exact; guide 10)")
    t.add_argument("--temperature-start", type=float, help="relaxed cluster: the first temperature (default 1)")
    t.add_argument("--temperature-end", type=float, help="relaxed cluster: the lowest temperature (default 0.5)")
    t.add_argument("--temperature-decay", type=float,
                   help="relaxed cluster: tau = max(end, start * exp(-decay * epochs)), per step (default 0.05)")
    t.add_argument("--out", help=f"run folder (default {DEFAULT_OUT})")
    t.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue RUN_DIR (or --out) from its last checkpoint, with its config.json; "
                        "only --epochs and --device may change")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.add_argument("--devices", type=int, metavar="N",
                   help="train data-parallel in N processes on this machine (DistributedDataParallel started "
                        "with torchrun: N GPUs with --device cuda, N CPU processes otherwise); the results are "
                        "those of one process up to float rounding and Monte Carlo noise (default 1). Under "
                        "torchrun, leave it out")

    e = sub.add_parser("evaluate", help="ELBO, importance-weighted log-likelihood with PSIS diagnostics, "
                                        "clustering scores; prints JSON and writes RUN_DIR/eval.json",
                       parents=[common])
    e.add_argument("run_dir")
    e.add_argument("--num-samples", type=int, default=100, help="importance samples per datapoint (default 100)")
    e.add_argument("--batch-size", type=int, default=500, help="datapoints per batch (default 500)")
    _add_data_flags(e, with_dataset=False)

    s = sub.add_parser("sample", help="decode prior samples, one row per cluster, into a PNG", parents=[common])
    s.add_argument("run_dir")
    s.add_argument("--per-cluster", type=int, default=10, help="samples per cluster (default 10)")
    s.add_argument("--out", help="PNG file (default RUN_DIR/samples.png)")
    s.add_argument("--device", default="cpu", help="default cpu")

    pl = sub.add_parser("plot", help="training curves and a 2-D view of the latent space, as PNGs",
                        parents=[common])
    pl.add_argument("run_dir")
    pl.add_argument("--device", default="cpu", help="default cpu")

    pr = sub.add_parser("predict", help="cluster new data with a trained run: one row per datapoint into a CSV",
                        parents=[common])
    pr.add_argument("run_dir")
    pr.add_argument("--data", required=True, metavar="FILE",
                    help="a .npy (array x) or .npz (x, optional labels y) file with rows like the training data")
    pr.add_argument("--out", help="CSV file (default RUN_DIR/labels.csv): columns cluster and, with --proba, "
                                  "p0..pK-1")
    pr.add_argument("--proba", action="store_true", help="also write p(cluster = k | x) for every k")
    pr.add_argument("--device", default="cpu", help="default cpu")
    return parser


DEFAULT_OUT = "runs/latest"


def _run_dir(args):
    """The run folder of ``train``: ``--resume RUN_DIR`` or ``--out`` (they must agree)."""
    from .errors import ConfigError

    if isinstance(args.resume, str):
        if args.out is not None and Path(args.out) != Path(args.resume):
            raise ConfigError(f"--resume {args.resume} and --out {args.out} name two folders; pass one of them")
        return Path(args.resume)
    return Path(args.out if args.out is not None else DEFAULT_OUT)


def _check_resume_flags(args):
    """``--resume`` takes every setting from RUN_DIR/config.json: refuse flags it would ignore."""
    from .errors import ConfigError

    allowed = {"epochs", "device"}
    ignored = [f"--{k.replace('_', '-')}" for k in (*MODEL_FIELDS, *TRAIN_FIELDS, *DATA_FIELDS, "preset", "pretrained")
               if k not in allowed and getattr(args, k, None) is not None]
    ignored += [f"--{k}" for k in ("download",) if getattr(args, k, False)]
    if ignored:
        raise ConfigError(f"--resume continues a run with the settings in its config.json, so {', '.join(ignored)} "
                          "would be ignored; drop them (only --epochs and --device may change) or start a "
                          "new run with --out")


def _resolve(args):
    """Merge library defaults < dataset defaults < preset < flags; returns (model_kw, train_kw, data_kw)."""
    from .defaults import resolve

    return resolve(vars(args), args.preset)


def cmd_train(args):
    from .inference.distributed import process_group

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
        from .runs import sigint_ignored

        with sigint_ignored():  # a second Ctrl-C must not cut the report short with a traceback
            _report_interrupt(out)
        return 130


#: The data sets each data flag applies to.
_DATA_FLAG_DATASETS = {"data_dir": ("mnist", "fashion-mnist", "svhn"), "download": ("mnist", "fashion-mnist", "svhn"),
                       "data_path": ("file",)}


def _check_flags_apply(args, data_kw, model_config=None):
    """Refuse a flag given on the command line that the chosen data set or model would ignore."""
    import inspect

    from .errors import ConfigError
    from .models import PRIORS

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
    from .runs import CHECKPOINT, CONFIG, load_checkpoint

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
    import os

    from .errors import ConfigError, check_positive
    from .inference.distributed import launch, launched_by_torchrun

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
    from .config import ModelConfig, TrainConfig
    from .runs import check_device, read_config, train_run

    from .runs import prepare_run_dir

    resume = args.resume is not None
    if not resume or args.overwrite:  # the folder first, before the data load (resume reads it first)
        prepare_run_dir(out, resume=resume, overwrite=args.overwrite)
    if resume:
        _check_resume_flags(args)
        model_config, train_config, data_spec = read_config(out)
        overrides = {k: getattr(args, k) for k in ("epochs", "device") if getattr(args, k) is not None}
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
    from .runs import read_metrics

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


def cmd_evaluate(args):
    from .errors import check_positive

    # checked here so that a bad value fails before the run is loaded
    check_positive("--num-samples", args.num_samples, integer=True)
    check_positive("--batch-size", args.batch_size, integer=True)
    from .evaluation.report import evaluate_run

    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        result = evaluate_run(args.run_dir, num_samples=args.num_samples, split=args.split,
                              device=args.device or "cpu", batch_size=args.batch_size,
                              progress=sys.stderr.isatty())
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning):
            print(f"pyro-gmvae evaluate: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    print(json.dumps(result))
    from .evaluation.marginal import reliability_note

    note = reliability_note(result)
    if note is not None:
        print(f"pyro-gmvae evaluate: warning: {note}", file=sys.stderr)
    return 0


def cmd_sample(args):
    from .plots import sample_grid

    path = sample_grid(args.run_dir, per_cluster=args.per_cluster, out=args.out, device=args.device)
    print(path)
    return 0


def cmd_plot(args):
    from .plots import plot_run

    for path in plot_run(args.run_dir, device=args.device):
        print(path)
    return 0


def cmd_predict(args):
    from .data import load_dataset
    from .errors import ConfigError
    from .estimator import GMVAEClusterer
    from .runs import atomic_write_bytes, check_writable, storage_error

    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "labels.csv"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {out / 'labels.csv'}")
    check_writable(out.parent, "--out")  # before any work
    estimator = GMVAEClusterer.load(args.run_dir, device=args.device)
    data = load_dataset("file", data_path=args.data, device=args.device)
    proba = estimator.predict_proba(data.x)
    labels = proba.argmax(-1)
    header = ["cluster"] + ([f"p{k}" for k in range(proba.shape[1])] if args.proba else [])
    lines = [",".join(header)]
    for label, row in zip(labels, proba):
        lines.append(",".join([str(int(label))] + ([f"{p:.6g}" for p in row] if args.proba else [])))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    except OSError as e:
        raise storage_error(e, out) from None
    print(out)
    return 0


def _setup(args):
    """What every subcommand does first: torch's thread count, then the plugins."""
    from .errors import check_positive
    from .plugins import import_plugins, load_entry_points

    if args.threads is not None:
        import torch

        check_positive("--threads", args.threads, integer=True)
        torch.set_num_threads(args.threads)
    load_entry_points()
    import_plugins(args.imports)


def _early_imports(argv):
    """Import the ``--import`` modules before the parser is built, so that its help lists their components."""
    from .plugins import import_plugins

    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", action="append")
    known, _ = pre.parse_known_args(argv)
    import_plugins(known.imports)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _early_imports(argv)
    except GMVAEError as e:
        print(f"pyro-gmvae: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    parser = build_parser()
    args = parser.parse_args(argv)
    args.argv = argv  # train --devices N starts the same command in N processes
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample, "plot": cmd_plot,
               "predict": cmd_predict}[args.command]
    try:
        _setup(args)
        return command(args)
    except GMVAEError as e:
        message = " ".join(str(e).split())  # one line, whatever the message holds
        print(f"pyro-gmvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    except OSError as e:  # a write the commands did not foresee (they check the folders first)
        from .runs import storage_error

        message = " ".join(str(storage_error(e, e.filename or "a file")).split())
        print(f"pyro-gmvae {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # evaluate, sample, plot: nothing half written (writes are atomic)
        print(f"\npyro-gmvae {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
