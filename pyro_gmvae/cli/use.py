"""The commands on a trained run: ``evaluate`` (eval.json), ``sample`` (samples.png), ``plot`` (curves and
the latent space) and ``predict`` (labels of new data)."""

import json
import sys
import warnings
from pathlib import Path

from ..data import load_dataset
from ..errors import ConfigError, check_positive
from ..estimator import GMVAEClusterer
from ..evaluation.report import estimate_notes, evaluate_run
from ..plots import plot_run, sample_grid
from ..runs import atomic_write_bytes, check_writable, storage_error


def cmd_evaluate(args):
    # checked here so that a bad value fails before the run is loaded
    for flag in ("num_samples", "num_steps", "num_chains", "bdmc"):
        if getattr(args, flag) is not None:
            check_positive(f"--{flag.replace('_', '-')}", getattr(args, flag), integer=True)
    check_positive("--batch-size", args.batch_size, integer=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        result = evaluate_run(args.run_dir, num_samples=args.num_samples, split=args.split,
                              device=args.device or "cpu", batch_size=args.batch_size,
                              progress=sys.stderr.isatty(), estimator=args.estimator, num_steps=args.num_steps,
                              num_chains=args.num_chains, bdmc=args.bdmc)
    for warning in caught:
        if issubclass(warning.category, RuntimeWarning):
            print(f"pyro-gmvae evaluate: warning: {' '.join(str(warning.message).split())}", file=sys.stderr)
    print(json.dumps(result))
    headline, notes = estimate_notes(result)
    print(f"pyro-gmvae evaluate: {headline}", file=sys.stderr)
    for note in notes:
        print(f"pyro-gmvae evaluate: warning: {note}", file=sys.stderr)
    return 0


def cmd_sample(args):
    path = sample_grid(args.run_dir, per_cluster=args.per_cluster, out=args.out, device=args.device)
    print(path)
    return 0


def cmd_plot(args):
    for path in plot_run(args.run_dir, device=args.device):
        print(path)
    return 0


def cmd_predict(args):
    out = Path(args.out) if args.out is not None else Path(args.run_dir) / "labels.csv"
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {out / 'labels.csv'}")
    check_writable(out.parent, "--out")  # before any work
    estimator = GMVAEClusterer.load(args.run_dir, device=args.device)
    data = load_dataset("file", data_path=args.data, device=args.device)
    proba = estimator.predict_proba(data.x)
    labels = proba.argmax(-1)
    header = ["cluster"] + ([f"p{k}" for k in range(proba.shape[1])] if args.proba else [])
    lines = [",".join(header)]
    for label, row in zip(labels, proba):
        lines.append(",".join([str(int(label))] + ([f"{p:.6g}" for p in row] if args.proba else [])))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(out, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    except OSError as e:
        raise storage_error(e, out) from None
    print(out)
    return 0
