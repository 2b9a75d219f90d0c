"""Marginal-likelihood estimators on a trained run: importance sampling with the guide, refined
heavy-tailed importance sampling, AIS, and BDMC on simulated data (issue 19).

    python benchmarks/likelihood.py /work/scratch/runs/vade-mnist-s7 --data-dir /work/shared/data/mnist \
        --num-images 100 --is-samples 5000 --refined-samples 1000 --ais-steps 200 --ais-chains 4 --bdmc 100

Prints one line per estimator and writes ``benchmarks/results/likelihood-NAME.json`` (``--out``): each
estimator's summary (mean log-likelihood, k-hat share above 0.7, ESS, HMC acceptance, BDMC bounds and
gap), its wall-clock seconds and seconds per image, the mean |IS - AIS| per image for both importance
samplers, the machine and the exact command. The images are the first ``--num-images`` of the split
(MNIST: the test split). Pin the process (``taskset -c 0``) and keep ``--threads 1`` for comparable times.
"""

import argparse
import json
import platform
import shlex
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
ESTIMATORS = ("is", "refined", "ais", "bdmc")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("run_dir", type=Path)
    p.add_argument("--dataset", default="mnist", help="data set of the images (default mnist)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--split", default="test", help="mnist-like data: train | test (default test); others: all")
    p.add_argument("--num-images", type=int, default=100, help="the first N images of the split")
    p.add_argument("--estimators", nargs="+", choices=ESTIMATORS, default=list(ESTIMATORS))
    p.add_argument("--batch-size", type=int, default=100)
    p.add_argument("--is-samples", type=int, default=5000, help="samples of plain IS with the guide")
    p.add_argument("--refined-samples", type=int, default=500)
    p.add_argument("--fit", default="laplace", choices=("laplace", "laplace-mixture", "elbo"),
                   help="refined IS: how to fit each image")
    p.add_argument("--newton-steps", type=int, default=3)
    p.add_argument("--adapt-rounds", type=int, default=2, help="refined IS: rounds of moment matching (0: none)")
    p.add_argument("--adapt-samples", type=int, default=None,
                   help="refined IS: draws per moment-matching round (default: 25 per latent dimension, >= 200)")
    p.add_argument("--max-adapt-rounds", type=int, default=8,
                   help="refined IS: rounds in all for the images whose pilot fails PSIS")
    p.add_argument("--components", type=int, default=2, help="laplace-mixture: clusters with a component")
    p.add_argument("--proposal", default="student-t", choices=("student-t", "normal", "defensive"))
    p.add_argument("--df", type=float, default=5.0, help="degrees of freedom of the Student-t proposal")
    p.add_argument("--widen-grid", type=float, nargs="+", default=[1.1], help="one factor: no pilot")
    p.add_argument("--refine-steps", type=int, default=300)
    p.add_argument("--refine-lr", type=float, default=0.05)
    p.add_argument("--num-pilot", type=int, default=200)
    p.add_argument("--ais-steps", type=int, default=500)
    p.add_argument("--ais-chains", type=int, default=8)
    p.add_argument("--leapfrog", type=int, default=5)
    p.add_argument("--adapt-chains", type=int, default=2, help="pilot chains that tune the HMC step sizes")
    p.add_argument("--bdmc", type=int, default=100, help="number of simulated images for BDMC")
    p.add_argument("--bdmc-steps", type=int, default=None, help="AIS steps of BDMC (default --ais-steps)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="cpu")
    p.add_argument("--per-image", action="store_true", help="also write every image's estimates")
    p.add_argument("--out", type=Path, default=None)
    return p.parse_args(argv)


def load_images(args, binarize):
    """The first ``--num-images`` of the split; a run trained with ``binarize`` is scored on the static binary
    draw of the whole split (as ``pyro-gmvae evaluate``), of which these are the first rows."""
    from pyro_gmvae import load_dataset
    from pyro_gmvae.data.binarize import binarize_static

    split = args.split if args.dataset in ("mnist", "fashion-mnist", "svhn") else "all"
    x = load_dataset(args.dataset, data_dir=args.data_dir, split=split, device=args.device).x
    if binarize is not None:
        x = binarize_static(x)
    return x[:args.num_images]


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    import pyro

    from pyro_gmvae.evaluation.ais import annealed_importance_sampling, bdmc
    from pyro_gmvae.evaluation.marginal import estimate_marginal_likelihood
    from pyro_gmvae.evaluation.refined import refined_marginal_likelihood
    from pyro_gmvae.runs import load_run

    pyro.set_rng_seed(args.seed)
    model, guide, model_config, train_config, _ = load_run(args.run_dir, device=args.device)
    x = load_images(args, train_config.binarize)
    n = x.shape[0]
    hmc = dict(num_leapfrog=args.leapfrog, batch_size=args.batch_size, num_adapt_chains=args.adapt_chains)
    results, per_image = {}, {}

    def record(name, result, seconds, count):
        summary = result.summary()
        summary.update(seconds=round(seconds, 2), seconds_per_image=round(seconds / count, 4))
        results[name] = summary
        shown = {k: (round(v, 4) if isinstance(v, float) else v) for k, v in summary.items()}
        print(f"{name}: {shown}", flush=True)

    if "is" in args.estimators:
        r, s = timed(lambda: estimate_marginal_likelihood(model, guide, x, args.is_samples, args.batch_size))
        record("is", r, s, n)
        per_image["is"] = r.log_likelihood
        per_image["is_khat"] = torch.as_tensor(r.khat)
    if "refined" in args.estimators:
        r, s = timed(lambda: refined_marginal_likelihood(
            model, guide, x, args.refined_samples, fit=args.fit, num_newton_steps=args.newton_steps,
            num_components=args.components, num_adapt_rounds=args.adapt_rounds, num_adapt_samples=args.adapt_samples,
            max_adapt_rounds=max(args.max_adapt_rounds, args.adapt_rounds),
            proposal=args.proposal, df=args.df, widen_grid=args.widen_grid,
            num_refine_steps=args.refine_steps, lr=args.refine_lr, num_pilot=args.num_pilot,
            batch_size=args.batch_size))
        record("refined", r, s, n)
        per_image["refined"] = r.log_likelihood
        per_image["refined_khat"] = torch.as_tensor(r.khat)
        per_image["refined_widen"] = r.widen
    if "ais" in args.estimators:
        r, s = timed(lambda: annealed_importance_sampling(model, guide, x, args.ais_steps, args.ais_chains, **hmc))
        record("ais", r, s, n)
        per_image["ais"] = r.log_likelihood
        for name in ("is", "refined"):
            if name in per_image:
                diff = (per_image[name] - r.log_likelihood).double()
                results[name]["mean_abs_diff_to_ais"] = float(diff.abs().mean())
                results[name]["mean_diff_to_ais"] = float(diff.mean())
                print(f"{name} - ais per image: mean {float(diff.mean()):.4f}, mean |.| {float(diff.abs().mean()):.4f}")
    if "bdmc" in args.estimators:
        steps = args.bdmc_steps or args.ais_steps
        r, s = timed(lambda: bdmc(model, guide, args.bdmc, x, steps, args.ais_chains, **hmc))
        record("bdmc", r, s, args.bdmc)
        per_image["bdmc_gap"] = r.gap

    name = args.run_dir.resolve().name
    out = args.out or ROOT / "benchmarks" / "results" / f"likelihood-{name}.json"
    row = {
        "run": str(args.run_dir), "dataset": args.dataset, "split": args.split, "num_images": n,
        "images": f"the first {n} of the {args.split} split" + (" (static binary)" if train_config.binarize else ""),
        "model": model_config.model, "likelihood": model_config.likelihood, "binarize": train_config.binarize,
        "seed": train_config.seed, "estimators": results,
        "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "threads": args.threads, "machine": platform.processor() or platform.machine(),
        "torch": torch.__version__, "command": shlex.join([sys.executable, *sys.argv]),
    }
    if args.per_image:
        row["per_image"] = {k: [round(float(v), 4) for v in t] for k, t in per_image.items()}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(row, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
