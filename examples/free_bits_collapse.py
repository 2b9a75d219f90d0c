"""GMVAE with and without the minimum information constraint (free bits).

Trains GMVAE over several seeds with ``lambda = 0`` (plain ELBO) and with ``lambda > 0``
(``pyro_gmvae.free_bits`` on the cluster site), on scikit-learn's 8x8 digits (embedded) or the
synthetic arcs, and reports per seed: the clusters in use (most probable cluster of > 1% of the
points), the information the cluster carries about the data (nats, ``log K`` at most, 0 when
collapsed), and the clustering accuracy (Hungarian, and many-to-one by majority label).
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
    model, guide = build(ModelConfig(model="gmvae", data_dim=data.data_dim, num_clusters=args.num_clusters,
                                     latent_dim=args.latent_dim, noise_dim=args.latent_dim, network=args.network,
                                     likelihood=data.likelihood))
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, lr_decay=1.0, seed=seed,
                         free_bits=lam, pretrain_epochs=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # the collapse warning is what we measure here
        history = Trainer(model, guide, config, progress=False).fit(data)
    last = history[-1]
    keys = ("num_active_clusters", "num_used_clusters", "cluster_information", "acc", "acc_many_to_one", "nmi",
            "elbo")
    return {"seed": seed, "lambda": lam, **{k: last[k] for k in keys},
            "curve": [(r["epoch"], r["num_used_clusters"], r["cluster_information"], r["acc"]) for r in history]}


def summarise(rows, k):
    def stat(key):
        values = [r[key] for r in rows]
        return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "best": max(values)}
    return {"runs": len(rows), "collapsed_share": sum(r["num_used_clusters"] < k for r in rows) / len(rows),
            **{key: stat(key) for key in ("num_used_clusters", "num_active_clusters", "cluster_information", "acc",
                                          "acc_many_to_one", "nmi")}}


def table_rows(summary, args, command):
    """One BENCHMARKS.md row per lambda (rendered by benchmarks/render.py)."""
    def pct(st):
        return f"{100 * st['mean']:.1f} ± {100 * st['std']:.1f}"

    return [{"table": "Minimum information constraint (free bits)", "name": f"GMVAE lambda = {lam}",
             "dataset": args["dataset"], "K": args["num_clusters"], "epochs": args["epochs"], "seeds": s["runs"],
             "acc (mean ± std, %)": pct(s["acc"]), "best acc (%)": f"{100 * s['acc']['best']:.1f}",
             "nmi (mean ± std, %)": pct(s["nmi"]),
             "cluster information (nats, mean ± std)": f"{s['cluster_information']['mean']:.2f} ± "
                                                       f"{s['cluster_information']['std']:.2f}",
             "clusters in use (mean)": f"{s['num_used_clusters']['mean']:.1f}",
             "runs with fewer than K in use": f"{s['collapsed_share']:.0%}", "command": command}
            for lam, s in summary.items()]


def figure(results, path, k):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.4))
    for lam, rows in results.items():
        colour = "tab:red" if float(lam) == 0 else "tab:blue"
        for i, r in enumerate(rows):
            epochs, used, info, acc = zip(*r["curve"])
            label = f"lambda = {lam}" if i == 0 else None
            for ax, values in zip(axes, (used, info, acc)):
                ax.plot(epochs, values, color=colour, alpha=0.6, label=label)
    axes[0].set(xlabel="epoch", ylabel="clusters in use", title=f"GMVAE, K = {k}")
    axes[1].set(xlabel="epoch", ylabel="cluster information (nats)")
    axes[2].set(xlabel="epoch", ylabel="accuracy (Hungarian)")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=80)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--lam", type=float, default=0.5, help="free-bits lambda in nats (the paper's default 0.5)")
    p.add_argument("--dataset", default="digits", choices=["digits", "synthetic"])
    p.add_argument("--num-clusters", type=int, default=10)
    p.add_argument("--num-datapoints", type=int, default=None, help="a subset (synthetic: points generated)")
    p.add_argument("--latent-dim", type=int, default=10)
    p.add_argument("--network", default="small")
    p.add_argument("--epochs", type=int, default=50)
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--out", default="free_bits.json")
    p.add_argument("--figure", default=None)
    args = p.parse_args(argv)
    data = load_dataset(args.dataset, num_datapoints=args.num_datapoints, seed=0)
    results, t0 = {}, time.perf_counter()
    for lam in (0.0, args.lam):
        results[str(lam)] = [run(seed, lam, args, data) for seed in range(args.seeds)]
        for r in results[str(lam)]:
            print(f"lambda={lam} seed={r['seed']} used={r['num_used_clusters']} "
                  f"information={r['cluster_information']:.3f} acc={r['acc']:.3f} nmi={r['nmi']:.3f}", flush=True)
    summary = {lam: summarise(rows, args.num_clusters) for lam, rows in results.items()}
    argv = sys.argv[1:] if argv is None else argv
    command = "python examples/free_bits_collapse.py " + " ".join(argv)
    out = {"command": command, "args": vars(args), "rows": table_rows(summary, vars(args), command),
           "summary": summary, "runs": results, "seconds": time.perf_counter() - t0}
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)
    if args.figure:
        figure(results, args.figure, args.num_clusters)
    print(json.dumps(summary, indent=1))
    return out


if __name__ == "__main__":
    main()
