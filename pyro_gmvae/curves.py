"""``curves.png`` (``pyro-gmvae plot``): the whole run on one time axis, counted in epochs from the first of
pretraining: the autoencoder's losses, the warm-up's, then training's rows of ``metrics.jsonl``, each phase shaded;
the start's accuracy where each stage of the start ends. A run recorded before the start's losses were kept per
epoch (its pretraining report has no ``pretrain_losses``) draws its training epochs only, as it did."""

from .drawing import _colour, _integer_ticks, _pyplot

#: Panels of curves.png: metrics.jsonl keys per panel, the panel's title and its y-axis label.
_PANELS = (
    (("elbo",), "ELBO per datapoint", "nats"),
    (("acc",), "accuracy", "accuracy (Hungarian matching)"),
    (("num_used_clusters", "num_active_clusters"), "clusters in use", "clusters"),
    (("cluster_information",), "cluster information I(x; c)", "nats"),
)
_SERIES_LABELS = {"num_used_clusters": "> 1 % of points (argmax)", "num_active_clusters": "> 1 % of responsibility"}
_SERIES_STYLES = {"num_used_clusters": dict(marker="o", linestyle="-"),
                  "num_active_clusters": dict(marker="s", linestyle="--", markerfacecolor="none")}
_START_LABELS = {"init_acc": "start (initialisation)", "warmup_acc": "after the warm-up"}
#: The phases of a run on the time axis of curves.png: name, shading (None: none) and the legend of its loss.
_PHASES = {"pretrain": ("pretraining", "#e8e8e8"), "warmup": ("warm-up", "#fde9c9"), "train": ("training", None)}
_PRETRAIN_LOSS_LABELS = {"mse": "pretraining: \u2212squared error", "likelihood": "pretraining: log p(x | z = mean)",
                         "denoise": "pretraining: log p(x | z = mean), masked inputs"}


def _run_phases(start):
    """``(pretraining losses, warm-up losses)`` per epoch from the pretrain report (empty lists for a run
    without them, or one written before they were recorded: its curves start at the first training epoch)."""
    start = start or {}
    losses = [v for v in start.get("pretrain_losses") or () if v is not None]
    return losses, [v for v in start.get("warmup_losses") or () if v is not None]


def curves_figure(rows, start=None):
    """The figure of :func:`_curves` (a matplotlib Figure): the whole run on one time axis, counted in epochs
    from the first of pretraining: the autoencoder's epochs, the warm-up's, then training's (``rows``, the
    metrics.jsonl rows), each phase shaded; the start's accuracy where each stage of the start ends."""
    plt = _pyplot()
    start = start or {}
    pretrain, warmup = _run_phases(start)
    offset = len(pretrain) + len(warmup)  # epoch e of training is epoch offset + e of the run
    spans = [("pretrain", 0, len(pretrain)), ("warmup", len(pretrain), offset),
             ("train", offset, offset + max([r["epoch"] for r in rows] or [0]))]
    spans = [span for span in spans if span[2] > span[1]]
    panels = [panel for panel in _PANELS if any(k in r for r in rows for k in panel[0])]
    if (pretrain or warmup) and _PANELS[0] not in panels:
        panels.insert(0, _PANELS[0])
    fig, axes = plt.subplots(1, max(1, len(panels)), figsize=(4.2 * max(1, len(panels)), 3.4), squeeze=False)
    for ax, (keys, title, ylabel) in zip(axes[0], panels):
        series = {k: [(offset + r["epoch"], r[k]) for r in rows if r.get(k) is not None] for k in keys}
        series = {k: pts for k, pts in series.items() if pts}
        if keys == ("elbo",):
            _start_losses(ax, pretrain, warmup, start)
        if len(series) > 1 and len({tuple(pts) for pts in series.values()}) == 1:
            # two counts that agree at every epoch: one line says so, two would hide each other
            pts = next(iter(series.values()))
            ax.plot(*zip(*pts), marker="o" if len(pts) < 30 else None,
                    label="both: " + "\nand ".join(_SERIES_LABELS[k] for k in series))
        else:
            for key, pts in series.items():
                style = dict(_SERIES_STYLES[key]) if len(series) > 1 else {"marker": "o"}
                if len(pts) >= 30:
                    style["marker"] = None
                label = _SERIES_LABELS.get(key) if len(series) > 1 else ("training: ELBO" if offset and
                                                                        key == "elbo" else None)
                ax.plot(*zip(*pts), **style, label=label)
        if keys == ("acc",):
            ends = {"init_acc": len(pretrain), "warmup_acc": offset}  # where each stage of the start ends
            for key, marker in (("init_acc", "s"), ("warmup_acc", "^")):
                if start.get(key) is not None:
                    ax.plot([ends[key]], [start[key]], marker=marker, linestyle="none", label=_START_LABELS[key])
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize="small")
        ax.set_xlabel("epoch of the run" if offset else "epoch")
        ax.set_ylabel(ylabel)
        ax.set_title(title)
        _integer_ticks(ax.xaxis)
        values = [v for pts in series.values() for _, v in pts]
        if values and ("num_active_clusters" in keys or "cluster_information" in keys):
            # from 0, so that a collapse (one cluster, 0 nats) shows as a fall to the axis; the top leaves
            # room for the markers of the largest value
            top = max(values)
            ax.set_ylim(0, top + (0.5 if "num_active_clusters" in keys else 0.06 * top) if top > 0 else 1)
        if "num_active_clusters" in keys:
            _integer_ticks(ax.yaxis)
        if offset:
            _shade_phases(ax, spans)
    # a strip under the panels for the phases' legend, inside the figure (TensorBoard draws it untrimmed)
    fig.tight_layout(rect=(0, 0.08 if offset else 0, 1, 1))
    if offset:
        _phase_legend(fig, spans)
    return fig


def _start_losses(ax, pretrain, warmup, start):
    """The start's losses, as objectives (higher is better, as the ELBO): the autoencoder's log-likelihood of
    its reconstructions (or minus its squared error), then the warm-up's ELBO with the clusters fixed."""
    if pretrain:
        label = _PRETRAIN_LOSS_LABELS.get(start.get("pretrain_recipe"), "pretraining: \u2212loss")
        ax.plot(range(1, len(pretrain) + 1), [-v for v in pretrain], color=_colour(1),
                marker="o" if len(pretrain) < 30 else None, markersize=3, label=label)
    if warmup:
        ax.plot(range(len(pretrain) + 1, len(pretrain) + len(warmup) + 1), [-v for v in warmup], color=_colour(2),
                marker="o" if len(warmup) < 30 else None, markersize=3, label="warm-up: ELBO, clusters fixed")


def _shade_phases(ax, spans):
    """Each phase of the run shaded (the figure's legend names them)."""
    for phase, lo, hi in spans:
        colour = _PHASES[phase][1]
        if colour is not None:
            ax.axvspan(lo, hi, color=colour, zorder=0, linewidth=0)
    ax.set_xlim(0, spans[-1][2] + 0.5)


def _phase_legend(fig, spans):
    """The phases' names and epochs under the panels, off the data."""
    from matplotlib.patches import Patch

    handles = [Patch(facecolor=_PHASES[phase][1] or "white", edgecolor="0.6",
                     label=f"{_PHASES[phase][0]} (epochs {lo + 1}\u2013{hi})") for phase, lo, hi in spans]
    fig.legend(handles=handles, loc="lower center", bbox_to_anchor=(0.5, 0.0), ncol=len(handles), fontsize="small",
               frameon=False)
