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
        "ELBO per datapoint", "accuracy", "clusters in use", "cluster information I(x; c)"]
    assert acc.get_ylabel() == "accuracy (Hungarian matching)" and info.get_ylabel() == "nats"
    start = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in acc.get_lines()
             if not line.get_label().startswith("_")}
    assert start == {"start (initialisation)": ([0], [0.7]), "after the warm-up": ([0], [0.75])}
    lines = sorted(used.get_lines(), key=lambda line: line.get_ydata()[0])
    assert [list(line.get_ydata()) for line in lines] == [[9, 9, 9], [10, 10, 10]]
    assert lines[0].get_linestyle() != lines[1].get_linestyle() and lines[0].get_marker() != lines[1].get_marker()
    assert [text.get_text() for text in used.get_legend().get_texts()] == [
        "> 1 % of points (argmax)", "> 1 % of responsibility"]
    assert used.get_ylim()[0] == 0 and info.get_ylim()[0] == 0  # a collapse would fall to the axis
    # the largest values sit below the top with room for their markers (half a count, 6 % of the nats)
    assert used.get_ylim()[1] == 10.5 and info.get_ylim()[1] == pytest.approx(2.12)


def test_curves_draw_the_whole_run_pretraining_and_warm_up_first(figures):
    rows = [{"epoch": e, "elbo": -10.0 + e, "acc": 0.8 + e / 100, "num_active_clusters": 4,
             "num_used_clusters": 4} for e in range(1, 4)]
    start = {"pretrain_recipe": "likelihood", "pretrain_losses": [30.0, 20.0, 15.0, 12.0, 11.0],
             "warmup_losses": [14.0, 13.0], "init_acc": 0.7, "warmup_acc": 0.75}
    plots._curves(rows, "curves.png", start=start)
    fig = figures[0]
    elbo, acc = fig.axes[:2]
    lines = {line.get_label(): (list(line.get_xdata()), list(line.get_ydata())) for line in elbo.get_lines()}
    # one time axis: pretraining epochs 1-5, the warm-up's 6-7, training's 8-10; the start's losses as objectives
    assert lines["pretraining: log p(x | z = mean)"] == ([1, 2, 3, 4, 5], [-30.0, -20.0, -15.0, -12.0, -11.0])
    assert lines["warm-up: ELBO, clusters fixed"] == ([6, 7], [-14.0, -13.0])
    assert lines["training: ELBO"] == ([8, 9, 10], [-9.0, -8.0, -7.0])
    assert elbo.get_xlabel() == "epoch of the run" and elbo.get_xlim()[0] == 0 and elbo.get_xlim()[1] >= 10
    # the start's accuracy where each stage ends, no longer both at 0
    marks = {line.get_label(): list(line.get_xdata()) for line in acc.get_lines()}
    assert marks["start (initialisation)"] == [5] and marks["after the warm-up"] == [7]
    # the phases shaded on every panel and named under them
    for ax in fig.axes:
        assert len(ax.patches) == 2, ax.get_title()  # pretraining and warm-up; training is left white
    names = [t.get_text() for t in fig.legends[0].get_texts()]
    assert names == ["pretraining (epochs 1\u20135)", "warm-up (epochs 6\u20137)", "training (epochs 8\u201310)"]


def test_the_pretraining_losses_of_a_run_reach_its_curves(tmp_path, monkeypatch):
    """A run records the loss of every pretraining and warm-up epoch; plot draws them (a run from before
    they were recorded keeps its old curves: the test above without pretrain_losses)."""
    from pyro_gmvae.cli import main
    from pyro_gmvae.runs import load_checkpoint

    run = tmp_path / "run"
    assert main(["train", "--dataset", "synthetic", "--num-datapoints", "120", "--network", "toy", "--epochs", "2",
                 "--pretrain-epochs", "3", "--init-warmup-epochs", "2", "--num-clusters", "3", "--batch-size", "60",
                 "--out", str(run), "--no-progress", "--threads", "1"]) == 0
    report = load_checkpoint(run)["pretrain_report"]
    assert len(report["pretrain_losses"]) == 3 and report["pretrain_losses"][-1] == report["pretrain_loss"]
    assert len(report["warmup_losses"]) == 2 and report["warmup_losses"][-1] == report["warmup_loss"]
    drawn = []
    monkeypatch.setattr(plots, "_save", lambda fig, path: drawn.append(fig) or path)
    monkeypatch.setattr(plots, "_latent_view", lambda *args: None)
    plots.plot_run(run)
    elbo = drawn[0].axes[0]
    x = sorted(x for line in elbo.get_lines() for x in line.get_xdata())
    assert x == [1, 2, 3, 4, 5, 6, 7]  # 3 pretraining, 2 warm-up, 2 training epochs


def test_two_equal_counts_draw_one_line_that_says_so(figures):
    rows = [{"epoch": e, "num_active_clusters": 4, "num_used_clusters": 4} for e in range(1, 4)]
    plots._curves(rows, "curves.png")
    (used,) = figures[0].axes
    assert len(used.get_lines()) == 1
    assert used.get_legend().get_texts()[0].get_text() == \
        "both: > 1 % of points (argmax)\nand > 1 % of responsibility"


def test_latent_view_by_cluster_and_by_label_with_legends_off_the_data(figures):
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=3, network="toy"))
    data = from_tensor(torch.rand(50, 6), torch.arange(50) % 3)
    plots._latent_view(model.eval(), guide.eval(), data, "latent.png")
    axes = figures[0].axes
    assert [ax.get_title() for ax in axes] == ["coloured by predicted cluster \u2192 label", "coloured by true label"]
    for ax in axes:
        legend = ax.get_legend()
        assert legend.get_window_extent().x0 >= ax.get_window_extent().x1  # beside the axes, not on the points
    assert len(axes[1].get_legend().get_texts()) == 3


def test_match_clusters_is_the_best_one_to_one_assignment():
    import itertools

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    clusters = np.where(rng.random(200) < 0.7, (labels + 2) % 5, rng.integers(0, 5, 200))
    matched = plots.match_clusters(clusters, labels, 5)
    agreement = sum(int(((clusters == k) & (labels == v)).sum()) for k, v in enumerate(matched) if v is not None)
    best = max(sum(int(((clusters == k) & (labels == v)).sum()) for k, v in zip(ks, range(4)))
               for ks in itertools.permutations(range(5), 4))  # brute force over every one-to-one map
    assert agreement == best
    assert sorted(v for v in matched if v is not None) == [0, 1, 2, 3] and matched.count(None) == 1


def test_both_panels_give_a_cluster_the_colour_of_its_label(figures):
    torch.manual_seed(0)
    model, guide = build(ModelConfig(data_dim=6, num_clusters=4, latent_dim=3, network="toy"))
    data = from_tensor(torch.rand(80, 6), torch.arange(80) % 3 + 5)  # labels 5, 6, 7
    plots._latent_view(model.eval(), guide.eval(), data, "latent.png")
    by_cluster, by_label = figures[0].axes
    clusters = plots._labelled_clusters(model.eval(), guide.eval(), data)[0]
    matched = plots.match_clusters(clusters, data.y.numpy(), 4)
    label_colour = {text.get_text(): tuple(handle.get_facecolor()[0])
                    for text, handle in zip(by_label.get_legend().get_texts(), by_label.get_legend().legend_handles)}
    for text, handle in zip(by_cluster.get_legend().get_texts(), by_cluster.get_legend().legend_handles):
        k = int(text.get_text().split()[0])
        colour = tuple(handle.get_facecolor()[0])
        if matched[k] is None:
            assert text.get_text() == f"{k} (no label)" and colour not in label_colour.values()
        else:
            assert text.get_text() == f"{k} \u2192 {matched[k]}" and colour == label_colour[str(matched[k])]


def test_sample_rows_name_the_label_their_cluster_matches(tmp_path, figures):
    from pyro_gmvae.cli import main

    run = tmp_path / "run"
    assert main(["train", "--dataset", "digits", "--network", "toy", "--epochs", "1", "--pretrain-epochs", "1",
                 "--init", "gmm", "--init-warmup-epochs", "0", "--num-clusters", "4", "--out", str(run),
                 "--no-progress", "--threads", "1"]) == 0
    from pyro_gmvae.evaluation.report import load_run_data
    from pyro_gmvae.runs import load_run

    model, guide, _, _, _ = load_run(run)
    matched = plots._labelled_clusters(model, guide, load_run_data(run))[1]
    plots.sample_grid(run, per_cluster=3)
    (ax,) = figures[0].axes
    assert ax.get_title() == "prior samples: z ~ p(z | cluster), decoded; 3 per cluster"
    assert ax.get_ylabel() == "cluster \u2192 label it matches"
    assert [t.get_text() for t in ax.get_yticklabels()] == [f"{k} \u2192 {v}" for k, v in enumerate(matched)]
