"""How good is the start? Accuracy of each initialisation strategy on the autoencoder's codes after N
pretraining epochs of each recipe (the lever behind VaDE's final accuracy), and its wall-clock.

    python benchmarks/pretraining.py --recipe likelihood --checkpoints 10 20 --data-dir ../shared/data/mnist
    python benchmarks/pretraining.py --recipe denoise --checkpoints 10 20 --data-dir ../shared/data/mnist

The library's own pieces (``pyro_gmvae.inference.pretrain``): the recipe trains the guide's z mean and the
decoder (VaDE's nets, Adam 1e-3, ``--batch-size``); at each checkpoint every strategy of ``--inits`` labels
the codes (``gmm``: the paper's diagonal GMM; ``umap``: UMAP of the codes + a GMM on it), scored against
the labels (read only for the score). Results: ``benchmarks/results/pretraining-RECIPE.json``.
"""

import argparse
import json
import platform
import time
import warnings
from pathlib import Path

import pyro
import torch

from pyro_gmvae import ModelConfig, build, load_dataset
from pyro_gmvae.evaluation.metrics import clustering_scores
from pyro_gmvae.inference.pretrain import INIT_STRATEGIES, encode_mean, pretrain_autoencoder

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--recipe", default="likelihood")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[10, 20])
    p.add_argument("--inits", nargs="+", default=["gmm", "umap"])
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--out", help="results file (default benchmarks/results/pretraining-RECIPE.json)")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    data = load_dataset(args.dataset, **({"data_dir": args.data_dir} if args.dataset in ("mnist",) else {}))
    pyro.set_rng_seed(args.seed)
    model, guide = build(ModelConfig(model="vade", data_dim=data.data_dim, num_clusters=data.num_classes,
                                     latent_dim=10, network="vade"))
    rows, t0, train_seconds = [], time.perf_counter(), [0.0]
    last = [time.perf_counter()]

    def on_epoch_end(epoch, loss):
        train_seconds[0] += time.perf_counter() - last[0]
        if epoch in args.checkpoints:
            codes = encode_mean(guide, data.x).double().numpy()
            for init in args.inits:
                t1 = time.perf_counter()
                labels = INIT_STRATEGIES[init](codes, data.num_classes, args.seed)[0]
                scores = clustering_scores(data.y.numpy(), labels)
                row = {"table": "Pretraining and initialisation", "dataset": args.dataset,
                       "recipe": args.recipe, "batch": args.batch_size, "epochs": epoch, "init": init,
                       "start labels acc (%)": round(100 * scores["acc"], 1),
                       "start labels nmi (%)": round(100 * scores["nmi"], 1),
                       "pretraining seconds": round(train_seconds[0]), "init seconds": round(time.perf_counter() - t1),
                       "command": "python benchmarks/pretraining.py " + " ".join(argv or []),
                       "machine": f"{platform.machine()}, 2 CPU cores, 1 thread", "date": time.strftime("%Y-%m-%d")}
                rows.append(row)
                print(json.dumps(row), flush=True)
        last[0] = time.perf_counter()

    pretrain_autoencoder(model, guide, data.x, epochs=max(args.checkpoints), batch_size=args.batch_size, lr=1e-3,
                         seed=args.seed, recipe=args.recipe, on_epoch_end=on_epoch_end)
    out = Path(args.out or ROOT / "benchmarks" / "results" / f"pretraining-{args.recipe}.json")
    out.write_text(json.dumps({"rows": rows}, indent=1) + "\n")
    print(f"{out} ({time.perf_counter() - t0:.0f} s)")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
