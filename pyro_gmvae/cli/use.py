"""The commands on a trained run: ``evaluate`` (eval.json), ``sample`` (samples.png), ``plot`` (curves and
the latent space) and ``predict`` (labels of new data)."""

import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from ..data import from_tensor, load_file_arrays
from ..errors import ConfigError, DataError, check_positive
from ..evaluation.report import estimate_notes, evaluate_run
from ..plots import plot_run, sample_grid
from ..runs import (CHECKPOINT, CONFIG, LOCK, METRICS, PRETRAINED, STAGING, atomic_write_bytes, check_writable,
                    holds_run, remove_stale_temporary_files, storage_error, trained_range)
from ..runs.folder import DERIVED


def cmd_evaluate(args):
    # checked here so that a bad value fails before the run is loaded
    for flag in ("num_samples", "num_steps", "num_chains", "bdmc"):
        if getattr(args, flag) is not None:
            check_positive(f"--{flag.replace('_', '-')}", getattr(args, flag), integer=True)
    check_positive("--batch-size", args.batch_size, integer=True)

    def say(line):
        print(f"pyro-gmvae evaluate: {line}", file=sys.stderr, flush=True)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        # a terminal gets bars; a log (stderr redirected) a line per tenth of a long AIS or BDMC
        result = evaluate_run(args.run_dir, num_samples=args.num_samples, split=args.split,
                              device=args.device or "cpu", batch_size=args.batch_size,
                              progress=True if sys.stderr.isatty() else say, estimator=args.estimator,
                              num_steps=args.num_steps, num_chains=args.num_chains, bdmc=args.bdmc,
                              save=not getattr(args, "no_save", False), log=say)
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
    run = Path(args.run_dir)
    data_path = Path(args.data).expanduser()
    x, _ = load_file_arrays(data_path, labels=False, flag="--data")  # labels, if any, are not used
    x = from_tensor(x, likelihood="normal").x  # the checks of the data (shape, finite, float32 range)
    out = run / "labels.csv" if args.out is None else Path(args.out)
    _check_out(out, run, data_path, overwrite=args.overwrite)  # before any work
    from ..estimator import GMVAEClusterer  # scikit-learn: imported by the command that uses it

    estimator = GMVAEClusterer.load(run, device=args.device)
    if not estimator.model_.cluster_sites:
        raise ConfigError(f"the run in {run} has no clusters (model {estimator.model_config_.model!r}), so there is "
                          "nothing to predict; train a clustering model (--model vade or gmvae)")
    _check_scale(x, run, estimator.model_config_.likelihood)
    proba = estimator.predict_proba(x)  # rows it cannot encode are a DataError naming them
    if not np.isfinite(proba).all():
        raise DataError(_scale_message(x, run, "give non-finite cluster probabilities"))
    labels = proba.argmax(-1)
    header = ["cluster"] + ([f"p{k}" for k in range(proba.shape[1])] if args.proba else [])
    lines = [",".join(header)]
    for label, row in zip(labels, proba):
        lines.append(",".join([str(int(label))] + ([f"{p:.6g}" for p in row] if args.proba else [])))
    created = _make_parents(out.parent)
    try:
        remove_stale_temporary_files(out)
        atomic_write_bytes(out, lambda f: f.write(("\n".join(lines) + "\n").encode()))
    except BaseException:
        _remove_folders(created)
        raise
    print(out)
    return 0


def _check_out(out, run, data_path, *, overwrite):
    """Refuse an ``--out`` that would destroy something: anything but a regular file, the run's own files, the
    input, or an existing file without ``--overwrite``; and one whose folders cannot hold it."""
    for part in out.parents:
        if (part.exists() or part.is_symlink()) and not part.is_dir():
            raise ConfigError(f"--out {out}: {part} is a file, not a folder; pass a path whose folders are folders")
    if out.is_dir():
        raise ConfigError(f"--out {out} is a folder; pass a file name such as {out / 'labels.csv'}")
    if out.exists() or out.is_symlink():
        if not out.is_file():
            what = "a symbolic link to nothing" if not out.exists() else "not a regular file (a FIFO, a device...)"
            raise ConfigError(f"--out {out} is {what}; pass the name of a new file, or of a regular file with "
                              "--overwrite")
        if _same_file(out, data_path):
            raise ConfigError(f"--out {out} is the --data file itself; write the labels to another file")
        run_files = [run / name for name in RUN_FILES + OTHER_OUTPUTS]
        if any(_same_file(out, p) for p in run_files):
            raise ConfigError(f"--out {out} is one of the run's own files; write the labels to another file, "
                              f"such as {run / 'labels.csv'}")
        if not overwrite:
            raise ConfigError(f"--out {out} exists; pass --overwrite to replace it, or another --out")
    resolved, run_resolved = out.resolve(), run.resolve()
    if resolved.parent == run_resolved and resolved.name in RUN_FILES + OTHER_OUTPUTS or \
            run_resolved / STAGING in resolved.parents:
        raise ConfigError(f"--out {out} would be one of the run's own files; write the labels to another file, "
                          f"such as {run / 'labels.csv'}")
    if resolved.name in RUN_FILES and holds_run(resolved.parent):
        raise ConfigError(f"--out {out} is a file of the run in {out.parent}; write the labels to another file")
    folder = next(p for p in (out.parent, *out.parent.parents) if p.exists())
    check_writable(folder, "--out")


#: The files a run folder holds that predict must never replace, and the other commands' outputs there.
RUN_FILES = (CONFIG, METRICS, CHECKPOINT, PRETRAINED, LOCK)
OTHER_OUTPUTS = tuple(name for name in DERIVED if name != "labels.csv")


def _same_file(a, b):
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _make_parents(folder):
    """Create ``folder`` and its missing parents; returns the ones created, deepest first."""
    created = []
    part = folder
    while not os.path.lexists(part) and part != part.parent:
        created.append(part)
        part = part.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        _remove_folders(created)
        raise storage_error(e, folder) from None
    return created


def _remove_folders(folders):
    for folder in folders:  # deepest first; one never made (a name too long) is skipped
        if not os.path.lexists(folder):
            continue
        try:
            folder.rmdir()
        except OSError:
            break


#: How far past the training data's range predict accepts values: a multiple of that range's width.
SCALE_TOLERANCE = 1000.0


def _check_scale(x, run, likelihood):
    """Refuse data far outside the range the model was trained on (another scale: pixels in 0..255 for a
    model of 0..1, values of 1e20), which would give meaningless or non-finite probabilities."""
    lo, hi = float(x.min()), float(x.max())
    if likelihood == "bernoulli" and (lo < 0 or hi > 1):
        raise DataError(_scale_message(x, run, "lie outside [0, 1], where the model's Bernoulli likelihood has no "
                                               "probability"))
    trained = trained_range(run)
    if trained is None:
        return
    width = max(trained[1] - trained[0], 1.0)
    if lo < trained[0] - SCALE_TOLERANCE * width or hi > trained[1] + SCALE_TOLERANCE * width:
        raise DataError(_scale_message(x, run, f"lie more than {SCALE_TOLERANCE:g} times the width of the training "
                                               "range outside it"))
    if lo < trained[0] - width or hi > trained[1] + width:  # usable, but perhaps not scaled as the training data
        note = _scale_message(x, run, "reach past the training range by more than its width")
        print(f"pyro-gmvae predict: warning: {note}", file=sys.stderr)


def _scale_message(x, run, problem):
    trained = trained_range(run)
    lo, hi = float(x.min()), float(x.max())
    then = f"[{trained[0]:.4g}, {trained[1]:.4g}]" if trained else "an unrecorded range"
    return (f"the --data values (range [{lo:.4g}, {hi:.4g}]) {problem}; the run in {run} was trained on values in "
            f"{then}: {_rescale_hint(lo, hi, trained)}")


def _rescale_hint(lo, hi, trained):
    """How to bring values in ``[lo, hi]`` to the training range (``config.json``'s fingerprint records it): a
    factor when both start at 0 (pixels in 0..16 or 0..255 for a model of [0, 1]), else the linear map."""
    if trained is None:
        return "rescale the data as the training data were scaled"
    t_lo, t_hi = trained
    if lo >= 0 and t_lo >= 0 and t_hi > 0 and hi > t_hi:
        return f"divide the values by {hi / t_hi:.4g}, as the training data were scaled"
    if hi > lo:
        return (f"map them onto the training range as the training data were scaled, e.g. (x - {lo:.4g}) * "
                f"{(t_hi - t_lo) / (hi - lo):.4g} + {t_lo:.4g}")
    return "rescale the data as the training data were scaled"
