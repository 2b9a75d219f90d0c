"""Choosing K: the held-out split, the summary over seeds, the pick, the figure, bad input."""

import math

import pytest
import torch

from pyro_gmvae import ConfigError, choose_num_clusters, from_tensor, sweep_num_clusters
from pyro_gmvae.plots import plot_num_clusters
from pyro_gmvae.selection import split_held_out, summarise_sweep

ROWS = [{"num_clusters": k, "seed": s, "log_likelihood": ll, "elbo": elbo, "khat_share_above_0_7": 0.0}
        for k, s, ll, elbo in [(5, 0, -10.0, -11.0), (5, 1, -10.4, -11.2), (10, 0, -9.0, -11.5), (10, 1, -9.2, -11.7)]]


def test_held_out_split_is_seeded_disjoint_and_complete():
    data = from_tensor(torch.arange(50.0)[:, None].expand(50, 2).contiguous(), torch.arange(50) % 3)
    train, test = split_held_out(data, 0.2, seed=3)
    again_train, again_test = split_held_out(data, 0.2, seed=3)
    assert test.num_datapoints == 10 and train.num_datapoints == 40
    assert torch.equal(test.x, again_test.x) and torch.equal(train.y, again_train.y)
    rows = set(train.x[:, 0].tolist()) | set(test.x[:, 0].tolist())
    assert rows == set(range(50)) and not set(train.x[:, 0].tolist()) & set(test.x[:, 0].tolist())
    assert torch.equal(test.y, test.x[:, 0].long() % 3)  # labels travel with their rows
    assert not torch.equal(split_held_out(data, 0.2, seed=4)[1].x, test.x)


def test_summary_and_pick_follow_the_means_over_seeds():
    stats = summarise_sweep(ROWS)
    assert stats[5][0] == pytest.approx(-10.2) and stats[5][1] == pytest.approx(math.sqrt(0.08)) and stats[5][2] == 2
    assert choose_num_clusters(ROWS) == 10  # the held-out log p(x) prefers 10
    assert choose_num_clusters(ROWS, "elbo") == 5  # the ELBO, with a larger gap at K = 10, prefers 5


def test_the_figure_is_drawn(tmp_path):
    path = plot_num_clusters(ROWS, tmp_path / "k.png")
    assert path.stat().st_size > 1000 and path.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize("kwargs,match", [
    ({"held_out": 1.5}, "held_out must lie in"),
    ({"num_clusters": (0, 3)}, "num_clusters must be > 0"),
    ({"seeds": ()}, "at least one number of clusters and one seed"),
])
def test_bad_sweeps_are_refused_before_any_training(kwargs, match):
    data = from_tensor(torch.rand(20, 3))
    with pytest.raises(ConfigError, match=match):
        sweep_num_clusters(data, **{"num_clusters": (2,), "seeds": (0,), **kwargs})


def test_nothing_to_choose_from():
    with pytest.raises(ConfigError, match="no sweep rows"):
        choose_num_clusters([])
