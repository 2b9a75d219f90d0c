"""Figures: distinct categorical colours, gaps between sample tiles, integer ticks for counts, legends beside
the data, and the latent view coloured by the predicted cluster and, beside it, by the true label."""

import numpy as np
import pytest
import torch

from pyro_gmvae import ModelConfig, build, from_tensor
from pyro_gmvae import plots


@pytest.fixture
def figures(monkeypatch):
    kept = []

    def keep(fig, path):
        fig.canvas.draw()
        kept.append(fig)
        return path

    monkeypatch.setattr(plots, "_save", keep)
    return kept


def test_the_palette_is_distinct():
    colours = plots.palette(20)
    assert len(set(colours)) == 20
    first = np.array(colours[:10])[:, :3]
    distances = np.linalg.norm(first[:, None] - first[None], axis=-1) + np.eye(10)
    assert distances.min() > 0.15  # no two of the first ten look alike


def test_sample_tiles_are_separated_by_a_gap():
    samples = np.zeros((2, 3, 4))  # 2 clusters, 3 samples each, 2x2 black images
    grid = plots._image_grid(samples, (1, 2, 2))
    assert grid.shape == (5, 8)
    assert (grid[2] == 1).all() and (grid[:, 2] == 1).all() and (grid[:, 5] == 1).all()
    assert (grid[:2, :2] == 0).all()


def test_counts_get_integer_ticks(figures):
    rows = [{"epoch": e, "elbo": -float(e), "num_active_clusters": 3 + e % 2} for e in range(1, 4)]
    plots._curves(rows, "curves.png")
    for ax in figures[0].axes:
        assert all(float(t).is_integer() for t in ax.get_xticks())
    assert all(float(t).is_integer() for t in figures[0].axes[-1].get_yticks())


def test_curves_show_the_start_clusters_in_use_and_cluster_information(figures):
    rows = [{"epoch": e, "elbo": -10.0 + e, "acc": 0.8 + e / 100, "num_active_clusters": 10,
             "num_used_clusters": 9, "cluster_information": 2.0} for e in range(1, 4)]
    plots._curves(rows, "curves.png", start={"init_acc": 0.7, "warmup_acc": 0.75, "pretrain_loss": 3.0})
    acc, used, info = figures[0].axes[1:]
    assert [ax.get_title() for ax in figures[0].axes] == [
        "ELBO per datapoint", "accuracy", "clusters in use", "cluster information I(x; c) (nats)"]
    start = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in acc.get_lines()
             if not line.get_label().startswith("_")}
    assert start == {"start (initialisation)": ([0], [0.7]), "after the warm-up": ([0], [0.75])}
    assert sorted(list(line.get_ydata()) for line in used.get_lines()) == [[9, 9, 9], [10, 10, 10]]
    assert used.get_ylim()[0] == 0 and info.get_ylim()[0] == 0  # a collapse would fall to the axis


def test_latent_view_by_cluster_and_by_label_with_legends_off_the_data(figures):
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=3, network="toy"))
    data = from_tensor(torch.rand(50, 6), torch.arange(50) % 3)
    plots._latent_view(model.eval(), guide.eval(), data, "latent.png")
    axes = figures[0].axes
    assert [ax.get_title() for ax in axes] == ["coloured by predicted cluster", "coloured by true label"]
    for ax in axes:
        legend = ax.get_legend()
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside the axes, not on the points
    assert len(axes[1].get_legend().get_texts()) == 3
