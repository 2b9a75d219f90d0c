"""Does ``is`` ever lose to ``is-guide``? Both, and ``is`` with the defensive mixture, on one run's test images.

    python benchmarks/is_defensive.py RUN --num-datapoints 200 --num-samples 1000 --out FILE.json

Per estimator: the mean log p(x), the share of images with k-hat > 0.7, the Monte-Carlo standard error, and
CPU seconds; per image, the paired difference of each ``is`` variant against ``is-guide`` (issue 31).
"""

import argparse
import json
import time

import pyro
import torch

from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.estimators import IS_SETTINGS, estimate_log_likelihood
from pyro_gmvae.runs import load_run, load_run_data


def main():
    p = argparse.ArgumentParser()
    p.add_argument("run")
    p.add_argument("--num-datapoints", type=int, default=200)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--alphas", type=float, nargs="*", default=[0.2, 0.5])
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    model, guide, _, train_config, _ = load_run(args.run)
    x = load_run_data(args.run, "test").x[:args.num_datapoints]
    x = binarize_static(x) if train_config.binarize else x
    variants = {"is-guide": ("is-guide", {}), "is (student-t)": ("is", {})}
    variants.update({f"is (defensive-t, alpha {a})": ("is", {"proposal": "defensive-t", "alpha": a})
                     for a in args.alphas})
    rows, per = [], {}
    for name, (estimator, options) in variants.items():
        pyro.set_rng_seed(0)
        t0 = time.process_time()
        with torch.no_grad():
            result = estimate_log_likelihood(model, guide, x, estimator, num_samples=args.num_samples, **options)
        summary = result.summary()
        per[name] = result.log_likelihood.double()
        rows.append({"estimator": name, "settings": {**(IS_SETTINGS if estimator == "is" else {}), **options},
                     "log_likelihood": summary["log_likelihood"],
                     "log_likelihood_mc_stderr": summary.get("log_likelihood_mc_stderr"),
                     "khat_share_above_0_7": summary.get("khat_share_above_0_7"), "khat_max": summary.get("khat_max"),
                     "cpu_seconds": time.process_time() - t0})
        if name != "is-guide":
            d = per[name] - per["is-guide"]
            rows[-1].update(mean_minus_is_guide=float(d.mean()), worst_image_minus_is_guide=float(d.min()))
        print(rows[-1], flush=True)
        with open(args.out, "w") as f:
            json.dump({"run": args.run, "num_datapoints": args.num_datapoints, "num_samples": args.num_samples,
                       "rows": rows}, f, indent=1, default=str)


if __name__ == "__main__":
    main()
