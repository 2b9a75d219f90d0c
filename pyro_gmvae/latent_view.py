"""The figure of latent.png: the guide's means of ``z`` projected to 2-D, coloured by the predicted cluster and,
beside it, by the true label (:func:`latent_figure`); used by :mod:`pyro_gmvae.plots` and the TensorBoard
tracker, so that neither imports the other."""

import numpy as np

from .drawing import _legend_beside, _pyplot, palette
from .evaluation.responsibilities import predict
from .inference.amortized import encode_mean

#: At most this many points are drawn.
_MAX_POINTS = 5000


def _project_2d(z):
    """The first two principal components (or the coordinates themselves for 1-2 dims)."""
    z = z - z.mean(0, keepdims=True)
    if z.shape[1] <= 2:
        return np.pad(z, ((0, 0), (0, 2 - z.shape[1])))
    _, _, vt = np.linalg.svd(z, full_matrices=False)
    return z @ vt[:2].T


def _category_colours(values):
    """``{value: colour}``: category k keeps colour k (as in every other figure) when the values are small
    integers, else the values take the palette in order."""
    values = np.unique(values)
    if np.issubdtype(values.dtype, np.integer) and values.min() >= 0 and values.max() < 20:
        colours = palette(int(values.max()) + 1)
        return {value: colours[int(value)] for value in values}
    return dict(zip(values, palette(len(values))))


def match_clusters(clusters, labels, num_clusters):
    """The label each cluster ``0..num_clusters-1`` stands for: the one-to-one matching of clusters to labels
    that agrees on the most points (Hungarian, as :func:`~pyro_gmvae.evaluation.metrics.hungarian_accuracy`),
    None for a cluster left without a label (more clusters than labels, or no points).

    >>> match_clusters(np.array([0, 0, 1, 2, 2]), np.array([7, 7, 7, 3, 3]), 4)
    [7, None, 3, None]
    """
    from scipy.optimize import linear_sum_assignment

    clusters, labels = np.asarray(clusters), np.asarray(labels)
    values = np.unique(labels)
    table = np.zeros((num_clusters, len(values)))
    np.add.at(table, (clusters, np.searchsorted(values, labels)), 1)
    matched = [None] * num_clusters
    for row, col in zip(*linear_sum_assignment(table, maximize=True)):
        if table[row, col] > 0:
            matched[row] = values[col].item()
    return matched


def _cluster_colours(matched, label_colours):
    """Cluster k in the colour of the label it matches; unmatched clusters in colours no label uses."""
    used = {tuple(c) for c in label_colours.values()}
    spare = iter(c for c in palette(len(matched) + len(label_colours) + 20) if tuple(c) not in used)
    return {k: label_colours[label] if label is not None else next(spare) for k, label in enumerate(matched)}


def _scatter_by(ax, points, colour, title, colours=None, names=None):
    """Points coloured by a category (a legend beside the axes) or, past 20 categories, by a colour bar.
    ``colours`` and ``names`` (``{value: ...}``) override each category's colour and legend entry."""
    values = np.unique(colour)
    if len(values) <= 20:
        colours = colours or _category_colours(values)
        for value in values:
            mask = colour == value
            ax.scatter(points[mask, 0], points[mask, 1], s=4, color=colours[value],
                       label=(names or {}).get(value, str(value)))
        _legend_beside(ax, title=title, markerscale=3)
    else:
        sc = ax.scatter(points[:, 0], points[:, 1], c=colour, s=4, cmap="turbo")
        ax.figure.colorbar(sc, ax=ax, label=title)
    ax.set_title(f"coloured by {title}")


def _labelled_clusters(model, guide, data):
    """``(clusters, matched)``: the predicted cluster of the first points of ``data`` and, when the data
    have labels, the label each cluster stands for (:func:`match_clusters`; else None)."""
    clusters = predict(model, guide, data.x[:_MAX_POINTS]).cpu().numpy()
    if data.y is None:
        return clusters, None
    return clusters, match_clusters(clusters, data.y[:_MAX_POINTS].cpu().numpy(), model.num_clusters)


def latent_figure(model, guide, data):
    """The figure of latent.png: the guide's means of ``z`` for the first points of ``data``, projected to 2-D,
    coloured by the predicted cluster and, beside it, by the true label when there is one."""
    x = data.x[:_MAX_POINTS]
    z = encode_mean(guide, x)
    points = _project_2d(z.cpu().double().numpy())
    labels = None if data.y is None else data.y[:_MAX_POINTS].cpu().numpy()
    views = []
    if model.cluster_sites:
        clusters, matched = _labelled_clusters(model, guide, data)
        if matched is None:
            views.append((clusters, "predicted cluster", None, None))
        else:  # each cluster in the colour of the label it matches, so that the two panels agree
            label_colours = _category_colours(labels)
            names = {k: f"{k} \u2192 {label}" if label is not None else f"{k} (no label)"
                     for k, label in enumerate(matched)}
            views.append((clusters, "predicted cluster \u2192 label",
                          _cluster_colours(matched, label_colours), names))
    if labels is not None:
        views.append((labels, "true label", None, None))
    plt = _pyplot()
    fig, axes = plt.subplots(1, max(1, len(views)), figsize=(6.5 * max(1, len(views)), 5), squeeze=False)
    axis = "z" if z.shape[1] <= 2 else "principal component of E[z | x]"
    for ax, (colour, title, colours, names) in zip(axes[0], views or [(None, None, None, None)]):
        if colour is None:
            ax.scatter(points[:, 0], points[:, 1], s=4, color=palette(1)[0])
            ax.set_title("latent space")
        else:
            _scatter_by(ax, points, colour, title, colours, names)
        ax.set_xlabel(f"{axis} 1")
        ax.set_ylabel(f"{axis} 2")
    fig.suptitle(f"latent space ({x.shape[0]} points)")
    fig.tight_layout()
    return fig
