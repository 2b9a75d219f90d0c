"""Seeded 2-D toy data: well-separated arcs (spiral pieces), in the spirit of the GMVAE paper's toy data."""

from __future__ import annotations

import numpy as np

from ..errors import check_positive

__all__ = ["make_arcs", "make_hierarchy"]

# Shape of each arc: it turns through this fraction of its angular sector while its
# radius grows from _R0 to _R1, so neighbouring arcs never touch.
_SPAN = 0.55
_R0, _R1 = 2.0, 3.5


def make_arcs(num_datapoints=5000, num_arcs=5, noise=0.05, seed=0):
    """Make ``num_datapoints`` 2-D points on ``num_arcs`` separated spiral arcs.

    Arc ``k`` is the curve ``r(t) = R0 + (R1 - R0) t``, ``phi(t) = 2 pi k / K + span * (2 pi / K) t``
    for ``t`` uniform in [0, 1]: pieces of a K-armed spiral, cut short so that the arcs are
    far apart.  The clean curves are standardized (zero mean, unit scale per coordinate on
    average), then isotropic Gaussian noise of standard deviation ``noise`` (in standardized
    units) is added.  With the defaults the smallest gap between two arcs is about 1.0, i.e.
    twenty noise standard deviations.

    Returns ``(x, y)``: ``x`` float32 of shape (N, 2) and ``y`` int64 of shape (N,), shuffled,
    with arc sizes differing by at most one.
    """
    check_positive("num_datapoints", num_datapoints, integer=True)
    check_positive("num_arcs", num_arcs, integer=True)
    check_positive("noise", noise, strict=False)
    num_datapoints, num_arcs = int(num_datapoints), int(num_arcs)
    rng = np.random.default_rng(seed)
    y = np.arange(num_datapoints, dtype=np.int64) % num_arcs
    rng.shuffle(y)
    t = rng.uniform(0.0, 1.0, size=num_datapoints)
    sector = 2.0 * np.pi / num_arcs
    phi = sector * y + _SPAN * sector * t
    r = _R0 + (_R1 - _R0) * t
    clean = np.stack([r * np.cos(phi), r * np.sin(phi)], axis=1)
    # Standardize with the statistics of the clean curves (a scalar scale keeps the shapes).
    clean = clean - clean.mean(axis=0)
    clean = clean / np.sqrt((clean**2).sum(axis=1).mean() / 2.0)
    x = clean + noise * rng.standard_normal(size=clean.shape)
    return x.astype(np.float32), y


def make_hierarchy(num_datapoints=900, num_super=3, clusters_per_super=3, noise=0.1, seed=0):
    """Make ``num_datapoints`` 2-D points in ``num_super`` super-clusters of ``clusters_per_super``
    Gaussian blobs each: a two-level structure for the hierarchical model.

    Super-cluster centres sit on a circle of radius 4; the blobs of a super-cluster sit on a small
    circle of radius 1 around its centre (a random rotation per super-cluster); each blob is
    isotropic Gaussian with standard deviation ``noise``. With the defaults blobs of one
    super-cluster are about 17 noise standard deviations apart and super-clusters about 4.9 units.

    Returns ``(x, y_fine, y_super)``: ``x`` float32 of shape (N, 2), ``y_fine`` int64 in
    ``[0, num_super * clusters_per_super)`` with ``y_super = y_fine // clusters_per_super``;
    shuffled, with blob sizes differing by at most one.
    """
    check_positive("num_datapoints", num_datapoints, integer=True)
    check_positive("num_super", num_super, integer=True)
    check_positive("clusters_per_super", clusters_per_super, integer=True)
    check_positive("noise", noise, strict=False)
    num_datapoints, num_super, per = int(num_datapoints), int(num_super), int(clusters_per_super)
    rng = np.random.default_rng(seed)
    angle = 2.0 * np.pi * np.arange(num_super) / num_super
    super_centres = 4.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    sub_angle = 2.0 * np.pi * np.arange(per) / per + rng.uniform(0, 2 * np.pi, size=(num_super, 1))
    centres = super_centres[:, None, :] + np.stack([np.cos(sub_angle), np.sin(sub_angle)], axis=-1)
    centres = centres.reshape(num_super * per, 2)
    y = np.arange(num_datapoints, dtype=np.int64) % (num_super * per)
    rng.shuffle(y)
    x = centres[y] + noise * rng.standard_normal(size=(num_datapoints, 2))
    return x.astype(np.float32), y, y // per
