"""Clustering accuracy over seeds: runs ``pyro-gmvae train`` once per seed (or collects finished runs)
and writes mean +- std, the best run, epochs, wall-clock and the exact command as one results row.

    python benchmarks/accuracy.py --name vade-digits --seeds 0 1 2 -- --dataset digits
    python benchmarks/accuracy.py --name vade-mnist --seeds 0 1 2 3 4 -- \
        --preset vade-mnist --data-dir ../shared/data/mnist
    python benchmarks/accuracy.py --kmeans digits          # k-means on the raw pixels, the same data
    python benchmarks/accuracy.py --umap digits            # UMAP + GMM on the raw pixels

``{seed}`` in the training flags becomes each seed (``--pretrained runs/bench/other-{seed}`` starts every seed
from another row's start). Runs go to ``runs/bench/NAME-SEED`` (outside git); a run folder that already holds a finished run
is collected, not retrained. Results: ``benchmarks/results/accuracy-NAME.json``. No label is used
for training or selection: the last epoch of every seed is reported.
"""

import argparse
import json
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEYS = ("acc", "nmi", "ari", "acc_many_to_one", "acc_most_confident")
PRIMARY = {"acc": "acc (Hungarian)", "acc_most_confident": "acc, most confident",
           "acc_many_to_one": "acc, many-to-one"}


def stats(values):
    return {"mean": statistics.mean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "best": max(values)}


def fmt(s):
    return f"{100 * s['mean']:.1f} ± {100 * s['std']:.1f}"


def held_out_scores(run_dir, split):
    """Scores of a trained run on ``split`` (GMVAE's protocol: the 10k test images), from ``pyro-gmvae evaluate``
    (its eval.json is reused when it was written for that split)."""
    path = run_dir / "eval.json"
    if not (path.exists() and json.loads(path.read_text()).get("split") == split):
        # the clustering scores are what is read: the quick guide-proposal estimate of log p(x) rather than the
        # reliable one, which fits every test image's posterior
        subprocess.run([sys.executable, "-m", "pyro_gmvae", "evaluate", str(run_dir), "--split", split,
                        "--estimator", "is-guide", "--num-samples", "10"], check=True, cwd=ROOT,
                       stdout=subprocess.DEVNULL)
    result = json.loads(path.read_text())
    return {k: result.get(k) for k in (*KEYS, "num_used_clusters")}


def run_seeds(name, seeds, train_args, evaluate_split=None):
    rows, seconds = [], []
    for seed in seeds:
        out = ROOT / "runs" / "bench" / f"{name}-{seed}"
        config = out / "config.json"
        finished = False
        if config.exists() and (out / "metrics.jsonl").exists():
            epochs = json.loads(config.read_text())["train"]["epochs"]
            lines = (out / "metrics.jsonl").read_text().splitlines()
            finished = bool(lines) and json.loads(lines[-1])["epoch"] == epochs
        if not finished:
            t0 = time.perf_counter()
            seeded = [arg.replace("{seed}", str(seed)) for arg in train_args]  # e.g. --pretrained runs/x-{seed}
            cmd = [sys.executable, "-m", "pyro_gmvae", "train", *seeded, "--seed", str(seed), "--out", str(out),
                   "--overwrite", "--no-progress"]
            subprocess.run(cmd, check=True, cwd=ROOT)
            (out / "wall.json").write_text(json.dumps({"seconds": time.perf_counter() - t0}) + "\n")
        if (out / "wall.json").exists():  # the wall-clock of the call that trained it, kept for later collections
            seconds.append(json.loads((out / "wall.json").read_text())["seconds"])
        history = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        last, start = history[-1], start_scores(out)
        protocol = start.get("pretrain_seconds", 0.0) + sum(r.get("seconds", 0.0) for r in history)
        scores = (held_out_scores(out, evaluate_split) if evaluate_split
                  else {k: last.get(k) for k in (*KEYS, "num_used_clusters")})
        num_clusters = json.loads(config.read_text())["model"]["num_clusters"]
        # the start's labels are scored (Hungarian) on the data it was fitted to, so the model is held to them there
        rows.append({"seed": seed, "epochs": last["epoch"], **scores, "num_clusters": num_clusters, **start,
                     "train_acc": last.get("acc"), "protocol_seconds": protocol})
    return rows, seconds


def start_scores(run_dir):
    """The start's scores (its own labels, the model after the initialisation and after the warm-up) from the run's
    pretrained.pt."""
    path = run_dir / "pretrained.pt"
    if not path.exists():
        return {}
    from pyro_gmvae.runs import load_checkpoint  # weights_only, as every command: a run folder runs no code

    report = dict(load_checkpoint(path).get("pretrain_report") or {})
    if "warmup_loss" in report and "warmup_acc" not in report and "init_acc" in report:
        # runs of commit 75912b2 scored the start once, after the warm-up
        report["warmup_acc"] = report.pop("init_acc")
    keys = ("start_labels_acc", "init_acc", "warmup_acc", "pretrain_seconds", "init_seconds")
    return {k: report[k] for k in keys if k in report}


def umap_rows(dataset, seeds, data_args):
    """The baseline a user would try next: UMAP of the raw data (10 dims, 20 neighbours, min_dist 0), then a
    full-covariance GMM on the embedding (N2D's recipe without the autoencoder)."""
    import warnings

    import numpy as np
    import umap
    from sklearn.mixture import GaussianMixture

    from pyro_gmvae import load_dataset
    from pyro_gmvae.evaluation.metrics import clustering_scores

    data = load_dataset(dataset, **data_args)
    x, y = data.x.numpy(), data.y.numpy()
    rows = []
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=seed).fit_transform(x)
        pred = GaussianMixture(int(np.unique(y).size), covariance_type="full", n_init=5,
                               random_state=seed).fit_predict(e)
        rows.append({"seed": seed, "epochs": None, **clustering_scores(y, pred)})
    return rows


def kmeans_rows(dataset, seeds, data_args):
    import numpy as np
    from sklearn.cluster import KMeans

    from pyro_gmvae import load_dataset
    from pyro_gmvae.evaluation.metrics import clustering_scores

    data = load_dataset(dataset, **data_args)
    x, y = data.x.numpy(), data.y.numpy()
    rows = []
    for seed in seeds:
        pred = KMeans(int(np.unique(y).size), n_init=10, random_state=seed).fit_predict(x)
        rows.append({"seed": seed, "epochs": None, **clustering_scores(y, pred)})
    return rows


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if "--" in argv:
        i = argv.index("--")
        argv, train_args = argv[:i], argv[i + 1:]
    else:
        train_args = []
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--name", help="row name; results go to benchmarks/results/accuracy-NAME.json")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--kmeans", metavar="DATASET", help="k-means on the raw data instead of training")
    p.add_argument("--umap", metavar="DATASET", help="UMAP + GMM on the raw data instead of training")
    p.add_argument("--data-dir")
    p.add_argument("--split", default="all")
    p.add_argument("--table", default="Accuracy")
    p.add_argument("--method", help="the row's description (default: its name)")
    p.add_argument("--primary", choices=list(PRIMARY), default="acc",
                   help="the accuracy whose best, median and worst seed the row gives (GMVAE's protocol: "
                        "acc_most_confident)")
    p.add_argument("--evaluate-split", choices=["train", "test"],
                   help="score each trained run on this split with pyro-gmvae evaluate (GMVAE's protocol: test)")
    args = p.parse_args(argv)
    command = "python benchmarks/accuracy.py " + shlex.join(argv) + (" -- " + shlex.join(train_args) if train_args else "")
    if args.kmeans or args.umap:
        dataset = args.kmeans or args.umap
        name = args.name or f"{'kmeans' if args.kmeans else 'umap-gmm'}-{dataset}"
        data_args = {"split": args.split, **({"data_dir": args.data_dir} if args.data_dir else {})}
        baseline = kmeans_rows if args.kmeans else umap_rows
        t0 = time.perf_counter()
        rows = baseline(dataset, args.seeds, data_args)
        wall = (time.perf_counter() - t0) / len(args.seeds)
        method = "k-means (raw pixels, n_init=10)" if args.kmeans else "UMAP (10-d) + full GMM on the raw pixels"
    else:
        name = args.name
        rows, seconds = run_seeds(name, args.seeds, train_args, args.evaluate_split)
        wall = statistics.median(seconds) if seconds else None
        first_run = ROOT / "runs" / "bench" / f"{name}-{args.seeds[0]}" / "config.json"
        method, dataset = args.method or name, json.loads(first_run.read_text())["data"].get("dataset", "digits")
    summary = {k: stats([r[k] for r in rows]) for k in KEYS if all(r.get(k) is not None for r in rows)}
    primary = args.primary
    with_start_labels = all("start_labels_acc" in r for r in rows)
    row = {"table": args.table, "name": name, "method": method, "dataset": dataset, "seeds": len(rows),
           "acc (mean ± std, %)": fmt(summary["acc"]), "best acc (%)": f"{100 * summary[primary]['best']:.1f}",
           "acc, most confident (mean ± std, %)": (fmt(summary["acc_most_confident"])
                                                    if "acc_most_confident" in summary else None),
           "scored on": f"the {args.evaluate_split} split" if args.evaluate_split else "the training data",
           "nmi (mean ± std, %)": fmt(summary["nmi"]), "ari (mean ± std, %)": fmt(summary["ari"]),
           "start acc (mean, %)": (f"{100 * statistics.mean(r['init_acc'] for r in rows):.1f}"
                                   if all("init_acc" in r for r in rows) else None),
           "after warm-up acc (mean, %)": (f"{100 * statistics.mean(r['warmup_acc'] for r in rows):.1f}"
                                           if all("warmup_acc" in r for r in rows) else None),
           # the start's own labels (UMAP + GMM of the codes), and on how many seeds the model kept them
           "start labels acc (mean, %)": (f"{100 * statistics.mean(r['start_labels_acc'] for r in rows):.1f}"
                                          if with_start_labels else None),
           # on the training data (Hungarian), where the start's labels are scored, whatever split the row is scored on
           "seeds at or above their start labels": (f"{sum(r['train_acc'] >= r['start_labels_acc'] for r in rows)} of "
                                                    f"{len(rows)}" if with_start_labels else None),
           "clusters in use (fewest / K)": (f"{min(r['num_used_clusters'] for r in rows)} / {rows[0]['num_clusters']}"
                                            if all(r.get("num_used_clusters") is not None for r in rows) else None),
           "median acc (%)": f"{100 * statistics.median(r[primary] for r in rows):.1f}",
           "worst acc (%)": f"{100 * min(r[primary] for r in rows):.1f}",
           "best, median, worst of": PRIMARY[primary],
           "epochs": rows[0]["epochs"], "median wall-clock per run (s)": None if wall is None else round(wall),
           "median protocol time (s)": (round(statistics.median(r["protocol_seconds"] for r in rows))
                                        if all("protocol_seconds" in r for r in rows) else None),
           "command": command, "machine": f"{platform.machine()}, 2 CPU cores, no GPU",
           "date": time.strftime("%Y-%m-%d")}
    out = ROOT / "benchmarks" / "results" / f"accuracy-{name}.json"
    out.write_text(json.dumps({"rows": [row], "per_seed": rows, "summary": summary}, indent=1) + "\n")
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
