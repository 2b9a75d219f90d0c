"""Figures of a run folder (``pyro-gmvae sample`` and ``pyro-gmvae plot``), drawn with matplotlib's
Agg backend so they work without a display.

- :func:`sample_grid`: decoded prior samples, one row per cluster (images), or a scatter plot
  coloured by cluster (2-D data).
- :func:`plot_run`: training curves (the whole run: :mod:`pyro_gmvae.curves`) and a 2-D view of
  the latent space coloured by the predicted cluster and, beside it, by the true label when there is one.

Clusters and labels get a categorical palette (:func:`palette`), legends sit beside the axes rather than
on the points, counts (epochs, clusters) get integer ticks, and sample images are separated by a gap.
"""

import io
import math
from pathlib import Path

import numpy as np
import pyro

from .curves import curves_figure
from .data.datasets import IMAGE_SHAPES
from .drawing import _colour, _legend_beside, _pyplot, palette  # noqa: F401 (palette: plots' API, as before)
from .errors import CheckpointError, ConfigError, GMVAEError, check_positive
from .evaluation.generation import sample_per_cluster
from .latent_view import _labelled_clusters, latent_figure, match_clusters  # noqa: F401 (plots' API, as before)
from .runs import (atomic_write_bytes, check_writable, load_checkpoint, load_run, load_run_data, memory_bytes,
                   read_metrics, storage_error)
from .selection import choose_num_clusters, summarise_sweep

_IMAGE_SHAPES = IMAGE_SHAPES  # flat sizes we know how to show as images


def image_shape(data_dim):
    """``(C, H, W)`` of a flat image of ``data_dim`` values, or None (square gray images included)."""
    if data_dim in _IMAGE_SHAPES:
        return _IMAGE_SHAPES[data_dim]
    side = math.isqrt(data_dim)
    return (1, side, side) if side * side == data_dim and side >= 4 else None


def _save(fig, path):
    """Draw ``fig`` and write it atomically: a symbolic link at ``path`` is replaced, not followed (it could
    point at a run's checkpoint), and a killed process leaves the old picture or the new one."""
    path = Path(path)
    buffer = io.BytesIO()
    try:
        fig.savefig(buffer, dpi=_DPI, bbox_inches="tight", format=path.suffix.lstrip(".").lower() or "png")
    finally:
        _pyplot().close(fig)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise storage_error(e, path) from None
    atomic_write_bytes(path, lambda f: f.write(buffer.getvalue()))
    return path


def check_picture_path(path, what="--out"):
    """Raise unless a figure can be written to ``path``: a suffix matplotlib knows (it names the format),
    not a folder, and a writable folder to hold it. Checked before anything is computed."""
    from matplotlib.backend_bases import FigureCanvasBase

    path = Path(path)
    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.suffix.lower().lstrip(".") not in formats:
        raise ConfigError(f"{what} {path} does not end in a picture format ({path.suffix or 'no suffix'}); "
                          f"name the file with one of: .{', .'.join(formats)} (e.g. {path.stem or 'samples'}.png)")
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; pass a file name such as {path / 'samples.png'}")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{what} {path} is not a regular file (a FIFO, a device...); pass the name of a picture file")
    for part in path.parents:
        if part.exists() and not part.is_dir():
            raise ConfigError(f"{what} {path}: {part} is a file, not a folder; pass a path whose folders are folders")
    check_writable(path.parent, what)


def _image_grid(samples, shape, gap=1, fill=1.0):
    """``(K, n, D)`` -> one ``(K*(H+gap)-gap, n*(W+gap)-gap[, C])`` array with one row of images per
    cluster, the tiles separated by ``gap`` pixels of ``fill``.

    >>> _image_grid(np.zeros((2, 3, 4)), (1, 2, 2)).shape
    (5, 8)
    """
    c, h, w = shape
    k, n = samples.shape[:2]
    tiles = samples.reshape(k, n, c, h, w).transpose(0, 1, 3, 4, 2)  # (K, n, H, W, C)
    tiles = np.pad(tiles, ((0, 0), (0, 0), (0, gap), (0, gap), (0, 0)), constant_values=fill)
    imgs = tiles.transpose(0, 2, 1, 3, 4).reshape(k * (h + gap), n * (w + gap), c)[:k * (h + gap) - gap,
                                                                                   :n * (w + gap) - gap]
    return imgs[..., 0] if c == 1 else imgs


def sample_grid(run_dir, per_cluster=10, out=None, device="cpu", *, seed=0):
    """Write decoded prior samples of each cluster of the run to ``out`` (default ``RUN_DIR/samples.png``);
    returns the path. Images get one row per cluster; 2-D data a scatter plot; other data one
    heat-map row per sample."""
    check_positive("--per-cluster", per_cluster, integer=True)
    out = Path(run_dir) / "samples.png" if out is None else Path(out)
    check_picture_path(out)
    model, guide, model_config, _, _ = load_run(run_dir, device)
    if not model.cluster_sites:
        raise CheckpointError(f"the run in {run_dir} has no clusters (model {model_config.model!r}); "
                              "samples per cluster need a mixture prior")
    k, d = model.num_clusters, model_config.data_dim
    shape = image_shape(d)
    _check_sample_size(k, per_cluster, d, model_config.latent_dim, shape, device)
    matched = _matched_labels(run_dir, model, guide, device)
    pyro.set_rng_seed(seed)
    samples = sample_per_cluster(model, per_cluster).cpu().double().numpy()  # (K, n, D)
    n = samples.shape[1]
    plt = _pyplot()
    # each row names the label its cluster stands for (Hungarian matching on the run's data), when there are labels
    names = [str(j) if matched is None else f"{j} \u2192 {'none' if matched[j] is None else matched[j]}"
             for j in range(k)]
    ylabel = "cluster" if matched is None else "cluster \u2192 label it matches"
    if d == 2:
        fig, ax = plt.subplots(figsize=(5, 5))
        for j in range(k):
            ax.scatter(samples[j, :, 0], samples[j, :, 1], s=8, color=_colour(j, k), label=names[j])
        _legend_beside(ax, markerscale=2, title=ylabel)
    elif shape is not None:
        grid = _image_grid(np.clip(samples, 0, 1), shape)
        fig, ax = plt.subplots(figsize=_grid_size(k, n, d, shape))
        ax.imshow(grid, cmap="gray" if grid.ndim == 2 else None, vmin=0, vmax=1)
        ax.set_yticks([j * (shape[1] + 1) + (shape[1] - 1) / 2 for j in range(k)], names)
        ax.set_xticks([])
        ax.set_ylabel(ylabel)
    else:
        fig, ax = plt.subplots(figsize=_grid_size(k, n, d, shape))
        ax.imshow(samples.reshape(k * n, d), aspect="auto", interpolation="nearest")
        ax.set_yticks([(j + 0.5) * n for j in range(k)], names)
        ax.set_ylabel(ylabel)
        ax.set_xlabel("feature")
    # what the picture is: draws from the model's prior, not reconstructions of data
    ax.set_title(f"prior samples: z ~ p(z | cluster), decoded; {n} per cluster", fontsize="medium")
    return _save(fig, Path(run_dir) / "samples.png" if out is None else out)


#: The most pixels a side of a figure may have (matplotlib's renderer refuses more than 2**16).
_MAX_SIDE_PIXELS = 2 ** 16 - 1
_DPI = 100


def _grid_size(k, n, d, shape):
    """The figure size (inches) of samples.png for ``k`` clusters of ``n`` samples of ``d`` values."""
    if d == 2:
        return 5, 5
    if shape is not None:
        return max(2, 0.6 * n), max(2, 0.6 * k)
    return 8, max(2, 0.15 * k * n)


def _check_sample_size(k, n, d, latent_dim, shape, device):
    """Refuse a --per-cluster whose picture matplotlib cannot draw or whose samples do not fit in memory,
    before anything is drawn (the largest that works is named)."""
    width, height = _grid_size(k, n, d, shape)
    if max(width, height) * _DPI > _MAX_SIDE_PIXELS:
        inches_per_sample = 0.6 if shape is not None else 0.15 * k  # the side that grows with n
        most = max(1, int(_MAX_SIDE_PIXELS / _DPI / inches_per_sample))
        raise ConfigError(f"--per-cluster {n} makes a picture of {int(width * _DPI)}x{int(height * _DPI)} pixels, "
                          f"more than matplotlib draws ({_MAX_SIDE_PIXELS} a side); pass --per-cluster {most} or less")
    need = k * n * (d * 12 + latent_dim * 4 * 64)  # decoded float32 + float64 copy; latents resampled 64x at most
    have = memory_bytes(device)
    if have is not None and need > have // 2:
        raise ConfigError(f"--per-cluster {n} needs about {need / 2 ** 30:.1f} GiB for {k} clusters but {device} has "
                          f"{have / 2 ** 30:.1f} GiB; lower --per-cluster")


def _matched_labels(run_dir, model, guide, device):
    """The label each cluster of the run stands for (:func:`match_clusters` on the run's data), or None when
    the data have no labels or the run folder cannot load them (fitted on in-memory arrays)."""
    try:
        data = load_run_data(run_dir, device=device)
    except GMVAEError:
        return None
    return _labelled_clusters(model, guide, data)[1]


def _curves(rows, path, start=None):
    """Training curves from metrics rows, one panel per quantity present (see
    :func:`~pyro_gmvae.curves.curves_figure`), written to ``path``; ``start`` is the pretraining report (its
    losses per epoch and the start's accuracy)."""
    return _save(curves_figure(rows, start), path)


def _latent_view(model, guide, data, path):
    return _save(latent_figure(model, guide, data), path)


def plot_run(run_dir, device="cpu"):
    """Write ``RUN_DIR/curves.png`` (training curves from ``metrics.jsonl``) and ``RUN_DIR/latent.png``
    (guide means of ``z``, projected to 2-D, coloured by predicted cluster and, beside it, by the true
    label when the data have labels); returns their paths."""
    run_dir = Path(run_dir)
    model, guide, _, _, _ = load_run(run_dir, device)
    check_writable(run_dir, "run folder")
    paths = []
    rows = read_metrics(run_dir)
    for number, row in enumerate(rows, 1):
        epoch = row.get("epoch") if isinstance(row, dict) else None
        if isinstance(epoch, bool) or not isinstance(epoch, int):
            raise CheckpointError(f"row {number} of {run_dir / 'metrics.jsonl'} has no epoch number ({row!r:.80}); "
                                  "fix or delete that line (pyro-gmvae train --resume rewrites the file)")
    _check_metrics_file(run_dir, rows)
    data = load_run_data(run_dir, device=device)  # before any figure is written: a run without data fails here
    if rows:
        start = load_checkpoint(run_dir).get("pretrain_report")
        paths.append(_curves(rows, run_dir / "curves.png", start))
    paths.append(_latent_view(model, guide, data, run_dir / "latent.png"))
    return paths


def _check_metrics_file(run_dir, rows):
    """Refuse a metrics.jsonl with lines that are not rows, beyond one torn last line (a run killed while
    writing): the curves would be drawn from part of the file, or not at all, without a word."""
    path = run_dir / "metrics.jsonl"
    try:
        lines = [line for line in path.read_bytes().splitlines() if line.strip()]
    except FileNotFoundError:
        return
    except OSError as e:
        raise CheckpointError(f"cannot read {path} ({e.strerror}); make it readable") from None
    if len(rows) < len(lines) - 1 or (lines and not rows):
        raise CheckpointError(f"line {len(rows) + 1} of {path} is not a JSON row of metrics, so the curves cannot be "
                              "drawn; fix or delete that line (pyro-gmvae train --resume rewrites the file)")


def plot_num_clusters(rows, out):
    """The figure of a K sweep (:func:`~pyro_gmvae.selection.sweep_num_clusters`): held-out ``log p(x)`` and
    ELBO against K, the mean over seeds with one standard deviation as error bars, the K each picks marked.
    Returns the path written."""
    check_picture_path(out)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 3.6))
    for key, label, colour in (("log_likelihood", "held-out log p(x) (IS)", _colour(0)),
                               ("elbo", "held-out ELBO", _colour(1))):
        stats = summarise_sweep(rows, key)
        ks = sorted(stats)
        means = np.array([stats[k][0] for k in ks])
        stds = np.nan_to_num(np.array([stats[k][1] for k in ks]))
        ax.errorbar(ks, means, yerr=stds, marker="o", capsize=3, color=colour,
                    label=f"{label}: best K = {choose_num_clusters(rows, key)}")
        best = choose_num_clusters(rows, key)
        ax.plot([best], [stats[best][0]], marker="*", markersize=14, color=colour, linestyle="none")
    seeds = sorted({r["seed"] for r in rows})
    ax.set_xlabel("number of clusters K")
    ax.set_ylabel("nats per held-out datapoint")
    ax.set_title(f"choosing K: mean ± sd over {len(seeds)} seed{'s' if len(seeds) > 1 else ''}", fontsize="medium")
    ax.set_xticks(sorted({r["num_clusters"] for r in rows}))
    # under the axes: inside, wherever it goes, some sweep has an error bar there
    ax.legend(fontsize="small", loc="upper center", bbox_to_anchor=(0.5, -0.17), ncol=1, frameon=False)
    ax.grid(alpha=0.3)
    return _save(fig, out)
