"""Clustering metrics against brute force and closed forms."""

import itertools
import math

import numpy as np
import torch

from pyro_gmvae.evaluation.metrics import (active_clusters, cluster_information, hungarian_accuracy,
                                           many_to_one_accuracy, used_clusters)


def test_hungarian_accuracy_is_the_best_permutation():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 60)
    clusters = (labels + rng.integers(0, 2, 60)) % 4
    best = max(np.mean(np.array(perm)[clusters] == labels) for perm in itertools.permutations(range(4)))
    assert math.isclose(hungarian_accuracy(labels, clusters), best)


def test_many_to_one_lets_clusters_share_a_label():
    labels = np.array([0, 0, 0, 1, 1, 1])
    clusters = np.array([0, 1, 1, 2, 2, 3])  # 4 clusters, 2 labels: every cluster is pure
    assert many_to_one_accuracy(labels, clusters) == 1.0
    assert hungarian_accuracy(labels, clusters) == 4 / 6


def test_cluster_information_closed_forms():
    k = 5
    uniform = torch.full((50, k), 1.0 / k)
    assert abs(cluster_information(uniform)) < 1e-9            # collapsed: the cluster says nothing
    assert active_clusters(uniform) == k                        # ...which the responsibility share misses
    one_hot = torch.eye(k).repeat(10, 1)
    assert math.isclose(cluster_information(one_hot), math.log(k), rel_tol=1e-9)
    assert used_clusters(one_hot) == k
    half = torch.zeros(10, k)
    half[:, 0] = 1.0
    assert used_clusters(half) == 1 and abs(cluster_information(half)) < 1e-9
