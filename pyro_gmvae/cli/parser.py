"""The parser of the ``pyro-gmvae`` command line: every subcommand and flag, with help and ``choices`` read
from the dataclasses, the registries and :mod:`pyro_gmvae.defaults`."""

import argparse
import dataclasses

from ..config import ModelConfig, TrainConfig
from ..data import DATASETS
from ..defaults import DATASET_DEFAULTS, PRESETS
from ..registry import CLUSTER_INFERENCE, GUIDES, INIT_STRATEGIES, MODELS, NETWORKS, PRETRAIN_RECIPES, PRIORS

#: The top-level help, in plain words (the module docstring above is reST for the API docs).
DESCRIPTION = ("Deep generative clustering (VaDE, GMVAE) with Pyro: train a model into a run folder, then "
               "evaluate it, sample from it, plot it, or cluster new data with it.")


EPILOG = ("A typical session: pyro-gmvae train --out runs/digits; pyro-gmvae evaluate runs/digits; "
          "pyro-gmvae sample runs/digits; pyro-gmvae plot runs/digits; "
          "pyro-gmvae predict runs/digits --data new.npy --out labels.csv. "
          "Each subcommand's --help lists its flags and their defaults.")

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
    t.add_argument("--network", help=f"network preset: {', '.join(NETWORKS)} ({_default('network')})")
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
