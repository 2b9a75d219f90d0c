"""The test log p(x) learning curve of a likelihood-grade preset (issue 31): train in stages with --resume and
score the test images after each.

    taskset -c 1 python benchmarks/likelihood_curve.py --preset vamp-bmnist --out-run runs/bench/vamp-bmnist \
        --stages 10 25 50 100 200 400 --num-test 1000 --num-samples 500 \
        --out benchmarks/results/likelihood-curve-vamp-bmnist.json

Each stage continues the run to that epoch (the same result as one straight run: the presets' schedules depend on
the epoch only), then scores the first ``--num-test`` test images (the static binary draw) by ``is-guide`` with
``--num-samples`` samples, with the Monte-Carlo error and the k-hat share. A later session adds stages with the
same command (finished stages are kept, the run resumes).
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import pyro
import torch

from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.estimators import estimate_log_likelihood
from pyro_gmvae.runs import load_run, load_run_data, read_metrics


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--preset", required=True)
    p.add_argument("--out-run", required=True)
    p.add_argument("--stages", type=int, nargs="+", required=True)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=500)
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train flags")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    out, run = Path(args.out), Path(args.out_run)
    record = json.loads(out.read_text()) if out.exists() else {"preset": args.preset, "rows": []}
    record["command"] = " ".join(sys.argv)
    done = {r["epoch"] for r in record["rows"]}
    for stage in args.stages:
        if stage in done:
            continue
        t0 = time.time()
        common = ["--epochs", str(stage), "--threads", "1", "--no-progress"]
        if (run / "checkpoint.pt").exists():  # a resumed run keeps its settings: only --epochs changes
            cmd = [sys.executable, "-m", "pyro_gmvae", "train", "--resume", str(run), *common]
        else:
            cmd = [sys.executable, "-m", "pyro_gmvae", "train", "--out", str(run), "--preset", args.preset,
                   "--data-dir", args.data_dir, *common, *args.extra]
        subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
        train_wall = time.time() - t0
        model, guide, _, _, _ = load_run(run)
        x = binarize_static(load_run_data(run, "test").x[:args.num_test])
        pyro.set_rng_seed(0)
        with torch.no_grad():
            summary = estimate_log_likelihood(model, guide, x, "is-guide", num_samples=args.num_samples).summary()
        metrics = read_metrics(run)
        record["rows"].append({"epoch": stage, "train_elbo": metrics[-1].get("elbo"),
                               "train_seconds_total": sum(m.get("seconds", 0) for m in metrics),
                               "stage_wall_seconds": train_wall, "estimator": "is-guide",
                               "num_samples": args.num_samples, "num_test_images": args.num_test,
                               "log_likelihood": summary["log_likelihood"],
                               "log_likelihood_mc_stderr": summary.get("log_likelihood_mc_stderr"),
                               "khat_share_above_0_7": summary.get("khat_share_above_0_7")})
        out.write_text(json.dumps(record, indent=1))
        print(record["rows"][-1], flush=True)


if __name__ == "__main__":
    main()
