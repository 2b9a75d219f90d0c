"""The parser of the ``pyro-gmvae`` command line: every subcommand and flag, with help and ``choices`` read
from the dataclasses, the registries and :mod:`pyro_gmvae.defaults`."""

import argparse
import dataclasses
import difflib
import inspect
import re

from ..config import COMPUTE_DTYPES, FREE_BITS_GROUPS, OBJECTIVES, ModelConfig, TrainConfig
from ..data import DATASETS, SPLITS
from ..data.binarize import BINARIZE
from ..defaults import DATASET_DEFAULTS, PRESETS
from ..evaluation.estimators import ESTIMATORS, default_count
from ..evaluation.report import DESCRIPTIONS, evaluate_run
from ..plots import sample_grid
from .compare import add_compare_parser
from ..registry import CLUSTER_INFERENCE, GUIDES, INIT_STRATEGIES, LIKELIHOODS, MODELS, NETWORKS, PRETRAIN_RECIPES, \
    PRIORS

#: The top-level help, in plain words (the module docstring above is reST for the API docs).
DESCRIPTION = ("Deep generative clustering (VaDE, GMVAE) with Pyro: train a model into a run folder, then "
               "evaluate it, sample from it, plot it, or cluster new data with it.")


EPILOG = ("A typical session: pyro-gmvae train --out runs/digits; pyro-gmvae evaluate runs/digits; "
          "pyro-gmvae sample runs/digits; pyro-gmvae plot runs/digits; "
          "pyro-gmvae predict runs/digits --data new.npy --out labels.csv. "
          "Each subcommand's --help lists its flags and their defaults.")

#: ``--threads`` is refused above this many threads per CPU core (tens of thousands crash OpenMP).
THREADS_PER_CORE = 4

#: Where ``train`` writes without ``--out``.
DEFAULT_OUT = "runs/latest"


def _default(field, otherwise=None):
    """``default X``, or ``default X on digits, Y on synthetic, Z otherwise`` where the data sets differ:
    read from the dataclasses and DATASET_DEFAULTS, so the help cannot drift from what runs."""
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


def _keyword(function, name):
    """The default of ``function``'s keyword ``name``: the flag's default is the function's own."""
    return inspect.signature(function).parameters[name].default


def _show(value):
    return f"{value:g}" if isinstance(value, float) else str(value)


def _common_flags():
    """``--import`` and ``--threads``, shared by every subcommand."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--import", dest="imports", action="append", metavar="MODULE",
                        help="import MODULE first, so that the priors, guides, models or networks it registers "
                             "can be named (repeatable); train records it in config.json, and the other "
                             "commands import a run's recorded modules only when named here (or with "
                             "--trust-plugins)")
    common.add_argument("--trust-plugins", action="store_true",
                        help="import every plugin module a run's config.json records (its code runs: only for "
                             "runs from sources you trust); without it, a recorded module must be named by "
                             "--import or declared as a pyro_gmvae.plugins entry point of an installed package")
    common.add_argument("--threads", type=int, metavar="N",
                        help="CPU threads for torch (torch.set_num_threads; default: torch's choice, "
                             f"usually one per core; at most {THREADS_PER_CORE} per core)")
    return common


def _add_data_flags(p, with_dataset=True):
    if with_dataset:
        p.add_argument("--dataset", help=f"one of {', '.join(DATASETS)} (default digits: embedded, no download)")
        p.add_argument("--data-dir", help="folder with the IDX files of mnist/fashion-mnist (.gz or not), "
                                          "or the torchvision root for svhn; read offline")
        p.add_argument("--data-path", help="a .npy (array x) or .npz (x, optional labels y) file for --dataset file")
        p.add_argument("--num-datapoints", type=int, help="use a seeded random subset of this many datapoints")
        p.add_argument("--download", action="store_true", help="let torchvision download mnist/fashion-mnist/svhn")
    p.add_argument("--split", choices=list(SPLITS), help=f"which part of the dataset (default {SPLITS[-1]})")
    p.add_argument("--device", help=f"cpu or cuda ({_default('device')})")


class Parser(argparse.ArgumentParser):
    """argparse's parser, whose mistakes are one line naming the help to read: argparse prints the whole usage
    first (40 lines for ``train``), which buries the message. Its subcommands are of this class too."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message}; see {self.prog} --help\n")


def unknown_arguments(parser, command, extras):
    """The one-line message for arguments no flag of ``command`` takes, with the closest flag for a misspelt
    one (``--num-clsuters`` -> ``--num-clusters``)."""
    flags = [flag for action in parser.subcommands[command]._actions for flag in action.option_strings if flag.startswith("--")]
    message = f"unrecognized argument{'s' if len(extras) > 1 else ''}: {' '.join(extras)}"
    for extra in extras:
        close = difflib.get_close_matches(extra.split("=")[0], flags, n=1, cutoff=0.6) \
            if extra.startswith("--") else []
        if close:
            return f"{message}; did you mean {close[0]}?"
    return f"{message}; see pyro-gmvae {command} --help"


def build_parser():
    parser = Parser(prog="pyro-gmvae", description=DESCRIPTION, epilog=EPILOG)
    sub = parser.add_subparsers(dest="command", required=True, metavar="{train,evaluate,compare,sample,plot,predict}")
    parser.subcommands = sub.choices  # name -> its parser, for unknown_arguments
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
    t.add_argument("--prior-hidden-dim", type=int, help=f"hidden units of GMVAE's prior net ({_default('prior_hidden_dim')})")
    t.add_argument("--prior", help=f"swap the prior: {', '.join(PRIORS)} (default: the model's own)")
    t.add_argument("--num-pseudo-inputs", type=int, metavar="K",
                   help="K pseudo-inputs of --prior vamp (p(z) = 1/K sum_k q(z | u_k); default: --num-clusters)")
    t.add_argument("--guide", help=f"guide family: {', '.join(GUIDES)} ({_default('guide')})")
    t.add_argument("--likelihood", choices=list(LIKELIHOODS), help="default: the dataset's")
    t.add_argument("--fixed-weights", action="store_true", default=None,
                   help="keep the mixture's cluster weights uniform, 1/K (as the official VaDE MNIST code); "
                        "the mixture prior only")
    t.add_argument("--flow-layers", type=int, metavar="N",
                   help="inverse autoregressive flows of --guide iaf, conditioned on the encoder (default 2)")
    t.add_argument("--network", help=f"network preset: {', '.join(NETWORKS)} ({_default('network')})")
    t.add_argument("--epochs", type=int, help=f"training epochs after pretraining ({_default('epochs')})")
    t.add_argument("--batch-size", type=int, help=f"minibatch size ({_default('batch_size')})")
    t.add_argument("--lr", type=float, help=f"Adam learning rate ({_default('lr')})")
    t.add_argument("--lr-decay", type=float, help="multiply the learning rate by this every --lr-decay-every "
                                                  f"epochs ({_default('lr_decay')})")
    t.add_argument("--lr-decay-every", type=int, help=f"epochs between learning-rate decays ({_default('lr_decay_every')})")
    t.add_argument("--min-lr", type=float, help=f"floor of the decayed learning rate ({_default('min_lr')})")
    t.add_argument("--adam-eps", type=float, help=f"Adam's epsilon ({_default('adam_eps')}, as VaDE)")
    t.add_argument("--num-particles", type=int, help=f"M vectorized Monte Carlo samples per datapoint ({_default('num_particles')})")
    t.add_argument("--objective", choices=list(OBJECTIVES),
                   help="elbo (TraceEnum_ELBO, the particles averaged) or iwae (the importance-weighted bound over "
                        f"--num-particles draws, the clusters summed exactly in each weight) ({_default('objective')})")
    t.add_argument("--kl-warmup-epochs", type=int, metavar="N",
                   help="KL warm-up: the KL term scaled by beta, rising linearly from 0 to 1 over N SVI epochs "
                        f"({_default('kl_warmup_epochs')})")
    t.add_argument("--jit", action=argparse.BooleanOptionalAction, default=None,
                   help="trace the loss (JitTraceEnum_ELBO); --no-jit: the eager loss; default: traced where that is "
                        "known to be safe (one process, no free bits, float32, exact clusters, built-in modules)")
    t.add_argument("--compute-dtype", choices=list(COMPUTE_DTYPES),
                   help="run the encoder and decoder networks under bfloat16 autocast (the ELBO stays float32); "
                        f"{_default('compute_dtype')}")
    t.add_argument("--seed", type=int, help=f"random seed ({_default('seed')})")
    t.add_argument("--binarize", choices=list(BINARIZE),
                   help="binarize data in [0, 1] by Bernoulli draws: static (one fixed draw, the one evaluate "
                        "uses) or dynamic (a fresh draw per epoch in training); default: the data as they are")
    t.add_argument("--pretrain-epochs", type=int, help="autoencoder pretraining epochs before the GMM "
                                                       "initialisation, 0 disables ("
                                                       + _default("pretrain_epochs", "the model's: vade, gmvae and "
                                                                                     "hierarchical 50") + ")")
    t.add_argument("--pretrain-lr", type=float, help=f"pretraining (and warm-up) learning rate ({_default('pretrain_lr')})")
    t.add_argument("--pretrain-recipe", choices=list(PRETRAIN_RECIPES),
                   help="autoencoder loss: likelihood (the model's own), denoise (20%% of the inputs masked), "
                        f"mse (the public PyTorch port's) ({_default('pretrain_recipe', 'likelihood')})")
    t.add_argument("--pretrain-batch-size", type=int, help="pretraining minibatch size (default --batch-size)")
    t.add_argument("--init", choices=list(INIT_STRATEGIES),
                   help="mixture initialisation from the codes: gmm (the paper's diagonal GMM), umap (ours: "
                        "UMAP of the codes, a GMM on it, each cluster's moments) or umap-inputs (UMAP of the data "
                        "instead of the codes) "
                        f"({_default('init', 'gmm')})")
    t.add_argument("--umap-epochs", type=int,
                   help="UMAP's optimisation epochs for --init umap/umap-inputs (default: UMAP's own, 200 for "
                        "10k points or more)")
    t.add_argument("--umap-neighbors", type=int, nargs="+", metavar="N",
                   help="UMAP's neighbourhood size for --init umap/umap-inputs (default 20); several (e.g. 10 20 30 "
                        "50): a start from each, warmed up, and the one whose model has the highest ELBO is kept")
    t.add_argument("--init-guide-scale", type=float,
                   help="start q(z|x) with this constant standard deviation (default: as initialised)")
    t.add_argument("--init-warmup-epochs", type=int,
                   help="epochs with the clusters fixed at the initialisation's labels before they are "
                        f"enumerated ({_default('init_warmup_epochs', 0)})")
    t.add_argument("--init-warmup-label-weight", type=float,
                   help="lambda: the warm-up also minimises lambda x the cross-entropy of the model's own cluster "
                        "posterior against the start's labels, so that the latent mixture classifies the codes as "
                        f"the start does ({_default('init_warmup_label_weight', 0)}; the exact clusters only)")
    t.add_argument("--pretrained", help="take the pretrained weights cached in this earlier run folder")
    t.add_argument("--free-bits", type=float, help="minimum information constraint lambda in nats, 0 = off "
                                                   f"({_default('free_bits')})")
    t.add_argument("--free-bits-site", help=f"the constrained site: cluster, z or w ({_default('free_bits_site')})")
    t.add_argument("--free-bits-group",  # checked by TrainConfig, whose message names the fix
                   help=f"{' or '.join(FREE_BITS_GROUPS)} (dim: per dimension, guided sites only; "
                        f"{_default('free_bits_group')})")
    t.add_argument("--cluster-inference", choices=list(CLUSTER_INFERENCE),
                   help="how training infers the cluster: exact (summed out in the model), amortized (a q(c|x) "
                        "head, summed over), relaxed (Gumbel-softmax), score-function (sampled, REINFORCE with a "
                        "learned baseline); evaluation sums the cluster out exactly whatever trained the model "
                        f"({_default('cluster_inference')}; guide 10)")
    t.add_argument("--temperature-start", type=float, help=f"relaxed cluster: the first temperature ({_default('temperature_start')})")
    t.add_argument("--temperature-end", type=float, help=f"relaxed cluster: the lowest temperature ({_default('temperature_end')})")
    t.add_argument("--temperature-decay", type=float,
                   help="relaxed cluster: tau = max(end, start * exp(-decay * epochs)), per step "
                        f"({_default('temperature_decay')})")
    t.add_argument("--out", help=f"run folder (default {DEFAULT_OUT})")
    t.add_argument("--resume", nargs="?", const=True, metavar="RUN_DIR",
                   help="continue RUN_DIR (or --out) from its last checkpoint, with its config.json; "
                        "only --epochs and --device may change")
    t.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    t.add_argument("--tensorboard", metavar="DIR",
                   help="also write TensorBoard logs into DIR: every metrics.jsonl field per epoch, the "
                        "pretraining and warm-up losses, the figures of plot (needs pyro-gmvae[tensorboard]; "
                        "view with tensorboard --logdir DIR)")
    t.add_argument("--no-progress", action="store_true",
                   help="no progress bars (the phase lines stay); bars are drawn only when stderr is a terminal")
    t.add_argument("--devices", type=int, metavar="N",
                   help="train data-parallel in N processes on this machine (DistributedDataParallel started "
                        "with torchrun: N GPUs with --device cuda, N CPU processes otherwise); the results are "
                        "those of one process up to float rounding and Monte Carlo noise (default 1). Under "
                        "torchrun, leave it out. At most one process per GPU or CPU core unless --force-devices")
    t.add_argument("--force-devices", action="store_true",
                   help="start the --devices N processes even if N is above the number of GPUs or CPU cores")

    e = sub.add_parser("evaluate", help="ELBO, importance-weighted log-likelihood with PSIS diagnostics, "
                                        "clustering scores; prints JSON and writes RUN_DIR/eval.json",
                       parents=[common])
    e.add_argument("run_dir")
    e.add_argument("--estimator", choices=list(ESTIMATORS), default=_keyword(evaluate_run, "estimator"),
                   help="the estimator of log p(x): " + "; ".join(f"{k}: {v}" for k, v in DESCRIPTIONS.items())
                        + " (default %(default)s; guide 05)")
    e.add_argument("--num-samples", type=int, help="importance samples per datapoint (is, is-guide; default "
                   f"{default_count('is', 'num_samples')} for is, "
                   f"{default_count('is-guide', 'num_samples')} for is-guide)")
    e.add_argument("--num-steps", type=int, help="annealing steps of ais and --bdmc (default "
                   f"{default_count('ais', 'num_steps')})")
    e.add_argument("--num-chains", type=int, help="AIS chains per datapoint (ais, --bdmc; default "
                   f"{default_count('ais', 'num_chains')})")
    e.add_argument("--bdmc", type=int, metavar="N", help="also bound log p(x) from both sides on N datapoints "
                   "simulated from the model (forward and reverse AIS): the gap certifies --num-steps")
    e.add_argument("--batch-size", type=int, default=_keyword(evaluate_run, "batch_size"),
                   help="datapoints per batch (default %(default)s)")
    _add_data_flags(e, with_dataset=False)
    e.add_argument("--no-save", action="store_true", help="print the JSON only, do not write RUN_DIR/eval.json "
                                                          "(a run folder one cannot or should not write)")

    add_compare_parser(sub, common)

    s = sub.add_parser("sample", help="decode prior samples, one row per cluster, into a PNG", parents=[common])
    s.add_argument("run_dir")
    s.add_argument("--per-cluster", type=int, default=_keyword(sample_grid, "per_cluster"),
                   help="samples per cluster (default %(default)s)")
    s.add_argument("--out", help="PNG file (default RUN_DIR/samples.png)")
    s.add_argument("--device", default="cpu", help="default %(default)s")

    pl = sub.add_parser("plot", help="training curves and a 2-D view of the latent space, as PNGs",
                        parents=[common])
    pl.add_argument("run_dir")
    pl.add_argument("--device", default="cpu", help="default %(default)s")

    pr = sub.add_parser("predict", help="cluster new data with a trained run: one row per datapoint into a CSV",
                        parents=[common])
    pr.add_argument("run_dir")
    pr.add_argument("--data", required=True, metavar="FILE",
                    help="a .npy (array x) or .npz (x, optional labels y) file with rows like the training data")
    pr.add_argument("--out", help="CSV file (default RUN_DIR/labels.csv): columns cluster and, with --proba, "
                                  "p0..pK-1")
    pr.add_argument("--proba", action="store_true", help="also write p(cluster = k | x) for every k")
    pr.add_argument("--overwrite", action="store_true", help="replace --out if it exists (a file of one's own, "
                                                             "never the run's files or --data)")
    pr.add_argument("--device", default="cpu", help="default %(default)s")
    return parser


def flag_names(parser, command):
    """``{dest: flag}`` of the options of the subcommand ``command`` (``temperature_start`` ->
    ``--temperature-start``), for :func:`in_flags`."""
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: max(a.option_strings, key=len) for a in subparsers.choices[command]._actions
            if a.option_strings and a.dest not in ("help", "imports")}


def in_flags(message, flags):
    """``message`` in the command line's words: a setting's Python name becomes its flag (``split='all'`` ->
    ``--split all``, ``temperature_start`` -> ``--temperature-start``). A setting whose flag the message names
    already is left as it is; a plain word (``model``, ``epochs``) is changed only in ``name=value``.

    >>> in_flags("use split='all'; temperature_start must be > 0", {"split": "--split",
    ...                                                            "temperature_start": "--temperature-start"})
    'use --split all; --temperature-start must be > 0'
    """
    for dest in sorted(flags, key=len, reverse=True):
        flag = flags[dest]
        if re.search(re.escape(flag) + r"(?![\w-])", message):
            continue
        message = re.sub(rf"(?<![\w./-]){dest}=(?:'([^']*)'|\"([^\"]*)\"|([^\s,;)]+))",
                         lambda m, flag=flag: _flag_value(flag, m), message)
        if "_" in dest:
            message = re.sub(rf"(?<![\w./-]){dest}(?![\w(/-])", flag, message)
    return message


def _flag_value(flag, match):
    value = next(g for g in match.groups() if g is not None)
    return flag if value == "True" else f"{flag} {value}"
