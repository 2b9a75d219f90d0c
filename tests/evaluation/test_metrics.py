"""Clustering metrics against brute force and closed forms."""

import itertools
import math

import numpy as np
import torch

from pyro_gmvae.evaluation.metrics import (active_clusters, cluster_information, hungarian_accuracy,
                                           most_confident_accuracy,
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


def test_most_confident_accuracy_labels_each_cluster_by_its_surest_point():
    labels = np.array([0, 0, 1, 1, 1])
    resp = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.7, 0.3], [0.2, 0.8], [0.45, 0.55]])
    # cluster 0's surest point is #0 (label 0), cluster 1's is #3 (label 1); point #2 goes to cluster 0
    assert most_confident_accuracy(labels, resp) == 4 / 5
    # unlike the majority rule, a cluster whose surest point is atypical takes that point's label
    labels = np.array([0, 0, 0, 1, 1])
    resp = torch.tensor([[0.5, 0.3, 0.2], [0.5, 0.2, 0.3], [0.5, 0.25, 0.25], [0.1, 0.6, 0.3], [0.9, 0.05, 0.05]])
    assert most_confident_accuracy(labels, resp) == 2 / 5
    assert many_to_one_accuracy(labels, resp.argmax(-1)) == 4 / 5
