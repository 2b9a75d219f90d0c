"""Choosing the number of clusters by held-out log-likelihood (issue 19, guide 11): K in --ks, --seeds each,
on a seeded 80 % of the data, scored on the other 20 % by the reliable IS and the ELBO.

    python benchmarks/choose_k.py --dataset digits --ks 5 10 15 20 30 --seeds 0 1 2 --binarize dynamic

Writes ``benchmarks/results/choose-k-DATASET.json`` (a row per K and seed, and one per K with the mean and
standard deviation over seeds) and the figure ``guides/figures/choose-k-DATASET.png``. Pin the process
(``taskset -c 0``) and keep ``--threads 1``.
"""

import argparse
import json
import platform
import shlex
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
TABLE = "Choosing the number of clusters by held-out log-likelihood (issue 19)"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="digits")
    p.add_argument("--ks", type=int, nargs="+", default=[5, 10, 15, 20, 30])
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--model", default="vade")
    p.add_argument("--binarize", default="dynamic", choices=("static", "dynamic", "none"))
    p.add_argument("--held-out", type=float, default=0.2)
    p.add_argument("--num-samples", type=int, default=500, help="IS draws per held-out datapoint")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--figure", type=Path, default=None)
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)

    from pyro_gmvae import choose_num_clusters, load_dataset, sweep_num_clusters
    from pyro_gmvae.plots import plot_num_clusters
    from pyro_gmvae.selection import summarise_sweep

    binarize = None if args.binarize == "none" else args.binarize
    data = load_dataset(args.dataset)
    rows = sweep_num_clusters(data, args.ks, args.seeds, held_out=args.held_out, num_samples=args.num_samples,
                              model=args.model, binarize=binarize, progress=False, log=print)
    figure = args.figure or ROOT / "guides" / "figures" / f"choose-k-{args.dataset}.png"
    plot_num_clusters(rows, figure)
    picks = {key: choose_num_clusters(rows, key) for key in ("log_likelihood", "elbo")}
    shared = {"table": TABLE, "dataset": args.dataset + (f" ({binarize} binarized)" if binarize else ""),
              "model": args.model, "held_out": args.held_out, "estimator": f"is ({args.num_samples} samples)",
              "threads": args.threads, "machine": platform.processor() or platform.machine(),
              "torch": torch.__version__, "command": shlex.join(["python", "benchmarks/choose_k.py", *sys.argv[1:]])}
    ll, elbo = summarise_sweep(rows, "log_likelihood"), summarise_sweep(rows, "elbo")
    summary = [dict(shared, num_clusters=k, seeds=ll[k][2], log_likelihood=round(ll[k][0], 3),
                    log_likelihood_sd=round(ll[k][1], 3), elbo=round(elbo[k][0], 3), elbo_sd=round(elbo[k][1], 3),
                    khat_share_above_0_7=round(max(r["khat_share_above_0_7"] or 0 for r in rows
                                                   if r["num_clusters"] == k), 3),
                    picked_by=", ".join(name for name, pick in (("log p(x)", picks["log_likelihood"]),
                                                                 ("ELBO", picks["elbo"])) if pick == k) or None)
               for k in sorted(ll)]
    out = args.out or ROOT / "benchmarks" / "results" / f"choose-k-{args.dataset}.json"
    out.write_text(json.dumps({"rows": summary, "runs": rows, "picked": picks,
                               "tables": {TABLE: {"columns": ["num_clusters", "seeds", "log_likelihood",
                                                              "log_likelihood_sd", "elbo", "elbo_sd",
                                                              "khat_share_above_0_7", "picked_by"]}}},
                              indent=1) + "\n")
    print(f"picked K: by held-out log p(x) {picks['log_likelihood']}, by the ELBO {picks['elbo']}; wrote {out}, "
          f"{figure}")


if __name__ == "__main__":
    main()
