"""GMVAE with and without the minimum information constraint (free bits) on the synthetic arcs.

Trains GMVAE over several seeds with ``lambda = 0`` (plain ELBO) and with ``lambda > 0``
(``pyro_gmvae.free_bits`` on the cluster site), and reports per seed the number of active clusters
and the clustering accuracy (many-to-one, as the GMVAE paper; Hungarian when K equals the classes).
Writes a JSON summary and a figure.

    python examples/free_bits_collapse.py --seeds 5 --out free_bits.json --figure free_bits.png
"""

import argparse
import json
import statistics
import sys
import time
import warnings

import pyro

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, load_dataset


def run(seed, lam, args, data):
    pyro.clear_param_store()
    model, guide = build(ModelConfig(model="gmvae", data_dim=2, num_clusters=args.num_clusters, latent_dim=2,
                                     noise_dim=2, network="toy", likelihood="normal"))
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=1.0, seed=seed,
                         free_bits=lam, pretrain_epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the collapse warning is what we measure here
        history = Trainer(model, guide, config, progress=False).fit(data)
    last = history[-1]
    return {"seed": seed, "lambda": lam, "num_active_clusters": last["num_active_clusters"], "acc": last["acc"],
            "acc_many_to_one": last["acc_many_to_one"], "nmi": last["nmi"], "elbo": last["elbo"],
            "curve": [(r["epoch"], r["num_active_clusters"], r["acc_many_to_one"]) for r in history]}


def summarise(rows, k):
    def stat(key):
        values = [r[key] for r in rows]
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "best": max(values)}
    return {"runs": len(rows), "collapsed_share": sum(r["num_active_clusters"] < k for r in rows) / len(rows),
            "num_active_clusters": stat("num_active_clusters"), "acc": stat("acc"),
            "acc_many_to_one": stat("acc_many_to_one"), "nmi": stat("nmi")}


def figure(results, path, k):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for lam, rows in results.items():
        colour = "tab:red" if float(lam) == 0 else "tab:blue"
        for i, r in enumerate(rows):
            epochs, active, acc = zip(*r["curve"])
            label = f"lambda = {lam}" if i == 0 else None
            axes[0].plot(epochs, active, color=colour, alpha=0.6, label=label)
            axes[1].plot(epochs, acc, color=colour, alpha=0.6, label=label)
    axes[0].set(xlabel="epoch", ylabel="active clusters", title=f"GMVAE, K = {k}")
    axes[1].set(xlabel="epoch", ylabel="accuracy (many-to-one)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--lam", type=float, default=0.5, help="free-bits lambda in nats (the paper's default 0.5)")
    p.add_argument("--num-clusters", type=int, default=8, help="K (the paper's synthetic experiment: 8)")
    p.add_argument("--num-datapoints", type=int, default=2000)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--batch-size", type=int, default=200)
    p.add_argument("--lr", type=float, default=2e-3)
    p.add_argument("--out", default="free_bits.json")
    p.add_argument("--figure", default=None)
    args = p.parse_args(argv)
    data = load_dataset("synthetic", num_datapoints=args.num_datapoints, seed=0)
    results, t0 = {}, time.perf_counter()
    for lam in (0.0, args.lam):
        results[str(lam)] = [run(seed, lam, args, data) for seed in range(args.seeds)]
        for r in results[str(lam)]:
            print(f"lambda={lam} seed={r['seed']} active={r['num_active_clusters']} acc={r['acc']:.3f} "
                  f"acc_m2o={r['acc_many_to_one']:.3f}", flush=True)
    summary = {lam: summarise(rows, args.num_clusters) for lam, rows in results.items()}
    argv = sys.argv[1:] if argv is None else argv
    out = {"command": "python examples/free_bits_collapse.py " + " ".join(argv), "args": vars(args),
           "summary": summary, "runs": results, "seconds": time.perf_counter() - t0}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    if args.figure:
        figure(results, args.figure, args.num_clusters)
    print(json.dumps(summary, indent=1))
    return out


if __name__ == "__main__":
    main()
