"""The start of a clustering run: an autoencoder, a mixture fitted to its codes, and a warm-up.

VaDE (Jiang et al. 2017) starts from a pretrained autoencoder and a diagonal Gaussian mixture fitted
to its codes; its result depends on that start more than on anything else. This module holds the
three stages, each a choice by name:

1. **Pretraining recipes** (:data:`PRETRAIN_RECIPES`): the autoencoder is the guide's ``z`` mean and
   the model's decoder, so the weights carry over unchanged.

   - ``likelihood``: minimise ``-log p(x | z = mean q(z | x))`` under the model's own likelihood.
   - ``denoise``: the same, from inputs with a share ``pretrain_noise`` of the features masked to 0
     (the denoising autoencoders of DEC and of VaDE's released weights).
   - ``mse``: squared error of the decoder's mean (the public PyTorch port's pretraining).

2. **Initialisation strategies** (:data:`INIT_STRATEGIES`), each giving labels for the data and a
   diagonal mixture (weights, means, scales) in latent space, copied into the prior by
   ``prior.init_from_gmm`` (a prior with ``full_covariance = True`` gets each labelled cluster's full
   covariance of the codes instead):

   - ``gmm``: the paper's: a diagonal Gaussian mixture on the codes (scikit-learn, the best of
     ``n_init`` k-means-initialised EM runs by likelihood; no label is used).
   - ``umap``: *ours, not the paper's* (after N2D, McConville et al. 2019): UMAP of the codes
     (10 dimensions, 20 neighbours, ``min_dist=0``), a full-covariance Gaussian mixture on the
     embedding for the labels, then each cluster's share, mean and standard deviation of the codes.

3. **Warm-up** (:func:`warm_up`, ``init_warmup_epochs``; ours): a few epochs of the model's own ELBO with
   the cluster *observed* at the initial labels (``poutine.condition``), so that the encoder, the decoder
   and the latent mixture come to represent the start's partition before the clusters are enumerated.
   The labels come from the initialisation, never from the data's labels.
"""

import inspect
import math
import warnings

import numpy as np
import torch
from pyro import poutine

from ..errors import ConfigError, DataError, TrainingError
from ..models.priors import inverse_softplus
from ..registry import INIT_STRATEGIES, PRETRAIN_RECIPES
from ..sites import CLUSTER, LATENT
from .amortized import encode_mean
from .elbo import make_elbo
from .minibatch import minibatch_epochs, permutation, progress_bar

MASK_NOISE = 0.2


def _likelihood_loss(model, z, x):
    return -model.decoder.x_dist(z).log_prob(x).sum()


def _mse_loss(model, z, x):
    return ((model.decoder.x_dist(z).mean - x) ** 2).sum()


# ``name -> (loss(model, z, x) summed over the batch, masks the inputs)``
PRETRAIN_RECIPES.builtin("likelihood", (_likelihood_loss, False))
PRETRAIN_RECIPES.builtin("denoise", (_likelihood_loss, True))
PRETRAIN_RECIPES.builtin("mse", (_mse_loss, False))


#: Data beyond this in absolute value are named as the likely cause of a non-finite pretraining loss.
LARGE_DATA = 1e6


def pretrain_autoencoder(model, guide, x, *, epochs, batch_size, lr, seed, recipe="likelihood",
                         noise=MASK_NOISE, progress=False, on_epoch_end=None):
    """Train the guide's ``z`` mean and the decoder as an autoencoder; returns the loss per epoch
    (``on_epoch_end(epoch, loss)`` is called after each).

    The ``z`` head's scale is trained too (the ``likelihood`` recipe ignores it, so it is set afterwards by
    :func:`init_guide_scale`)."""
    PRETRAIN_RECIPES.check(recipe)
    loss_fn, masked = PRETRAIN_RECIPES[recipe]
    params = list(guide.encoder.parameters()) + list(guide.heads[LATENT].parameters()) \
        + list(model.decoder.parameters())
    mask_g = torch.Generator(device=x.device).manual_seed(seed + 1)

    def batch_loss(idx):
        xb = inputs = x[idx]
        if masked:
            keep = torch.rand(xb.shape, generator=mask_g, device=xb.device, dtype=xb.dtype) >= noise
            inputs = xb * keep
        return loss_fn(model, guide.site_dists(inputs)[LATENT].mean, xb)

    top = float(x.abs().max()) if x.numel() else 0.0
    fix = "lower --pretrain-lr" if top <= LARGE_DATA else (f"the data reach {top:.3g}: standardise them (each "
                                                           "feature to mean 0 and standard deviation 1), or rescale "
                                                           "them; else lower --pretrain-lr")
    return _minibatch_epochs(batch_loss, params, x.shape[0], x.device, epochs=epochs, batch_size=batch_size, lr=lr,
                             seed=seed, desc="pretraining", fix=fix, progress=progress,
                             on_epoch_end=on_epoch_end)


def _minibatch_epochs(batch_loss, params, n, device, *, epochs, batch_size, lr, seed, desc, fix, progress,
                      on_epoch_end=None):
    """Adam on ``params`` over ``epochs`` seeded shuffles of ``n`` datapoints; ``batch_loss(idx)`` is a minibatch's
    summed loss. Returns the loss per datapoint of each epoch."""
    opt = torch.optim.Adam(params, lr=lr)
    g = torch.Generator().manual_seed(seed)
    losses, total = [], 0.0

    def step(idx, start):
        nonlocal total
        loss = batch_loss(idx)
        opt.zero_grad()
        (loss / idx.shape[0]).backward()
        opt.step()
        value = loss.item()
        total += value
        return value, idx.shape[0]

    def epoch_end(epoch):
        nonlocal total
        losses.append(total / n)
        total = 0.0
        if on_epoch_end is not None:
            on_epoch_end(len(losses), losses[-1])

    with progress_bar(epochs * math.ceil(n / batch_size), 0, desc, progress and epochs > 0) as bar:
        minibatch_epochs(step, n, epochs=epochs, batch_size=batch_size, order=lambda epoch: permutation(n, g, device),
                         what=f"{desc} loss", fix=fix, bar=bar, on_epoch_end=epoch_end)
    return losses


# -- initialisation strategies: codes -> (labels, weights, means, scales, report) -------------------------

def _gmm_start(codes, k, seed, n_init=10, tries=4):
    """The paper's start: a diagonal GMM on the codes; a failed or degenerate fit is retried with a
    10x larger covariance regulariser."""
    from sklearn.exceptions import ConvergenceWarning  # here: scikit-learn costs a second at import
    from sklearn.mixture import GaussianMixture

    reg, last_error = 1e-6, None
    for attempt in range(tries):
        try:
            gmm = GaussianMixture(k, covariance_type="diag", reg_covar=reg, n_init=n_init,
                                  random_state=seed + attempt, max_iter=200)
            with warnings.catch_warnings():  # the report says whether it converged; a failure is said below
                warnings.simplefilter("ignore", ConvergenceWarning)
                gmm.fit(codes)
            ok = np.all(np.isfinite(gmm.means_)) and np.all(gmm.covariances_ > 0) \
                and np.min(gmm.weights_) > 1e-4
            if ok:
                report = {"gmm_attempts": attempt + 1, "gmm_reg_covar": reg, "gmm_converged": bool(gmm.converged_),
                          "gmm_log_likelihood": float(gmm.score(codes))}
                return gmm.predict(codes), gmm.weights_, gmm.means_, np.sqrt(gmm.covariances_), report
            last_error = "degenerate fit (an empty or collapsed component)"
        except (ValueError, np.linalg.LinAlgError) as e:
            last_error = str(e)
        reg *= 10
    distinct = np.unique(codes.round(6), axis=0).shape[0]
    if distinct < k:  # the encoder maps the data onto fewer points than there are clusters
        raise TrainingError(f"the Gaussian mixture initialisation failed: the encoder maps the data onto {distinct} "
                            f"distinct code(s), fewer than the {k} clusters; check that the data vary (near-constant "
                            "or duplicated rows?), pretrain longer, or use fewer clusters")
    raise TrainingError(f"the Gaussian mixture initialisation failed {tries} times ({last_error}); "
                        "pretrain longer or use fewer clusters")


def _moments(codes, labels, k):
    """Each cluster's share, mean and standard deviation of the codes."""
    counts = np.bincount(labels, minlength=k)
    if counts.min() < 2:
        raise TrainingError(f"the initialisation left a cluster with {counts.min()} point(s); use fewer clusters "
                            "or --init gmm")
    means = np.stack([codes[labels == j].mean(0) for j in range(k)])
    stds = np.stack([codes[labels == j].std(0) for j in range(k)])
    floor = 1e-3 * codes.std(0).mean()
    return counts / counts.sum(), means, np.maximum(stds, floor)


def _full_moments(codes, labels, k):
    """Each cluster's share, mean and Cholesky factor of the covariance of the codes (a ridge of 1e-6 of the
    codes' mean variance keeps a flat cluster positive definite)."""
    weights, means, _ = _moments(codes, labels, k)
    ridge = 1e-6 * codes.var(0).mean() * np.eye(codes.shape[1])
    trils = np.stack([np.linalg.cholesky(np.cov(codes[labels == j].T, bias=True) + ridge) for j in range(k)])
    return weights, means, trils


#: UMAP's neighbourhood size in the umap starts (N2D's for MNIST); ``umap_neighbors`` / ``--umap-neighbors``
UMAP_NEIGHBORS = 20
#: The fewest datapoints each built-in start fits: a Gaussian mixture needs two, UMAP two neighbours each.
MIN_DATAPOINTS = {"gmm": 2, "umap": 3, "umap-inputs": 3}


def check_start_data(strategy, x):
    """Refuse, before any work, data that a built-in start cannot be fitted to: too few datapoints
    (:data:`MIN_DATAPOINTS`), or constant data, which hold no clusters to start from. ``x``: the data
    ``(N, D)``, or their number of rows."""
    if strategy not in MIN_DATAPOINTS:
        return
    n = x if isinstance(x, int) else x.shape[0]
    if n < MIN_DATAPOINTS[strategy]:
        why = "UMAP's neighbourhoods" if strategy != "gmm" else "a Gaussian mixture"
        fix = "pass --init gmm, or more data" if strategy != "gmm" else "pass more data"
        raise DataError(f"init {strategy!r} (--init {strategy}) needs at least {MIN_DATAPOINTS[strategy]} datapoints "
                        f"for {why}, got {n}; {fix}, or --pretrain-epochs 0 (no start)")
    if not isinstance(x, int) and bool((x == x[:1]).all()):
        raise DataError(f"the data are constant (all {n} rows are equal), so there are no clusters to start from "
                        f"(--init {strategy}); pass data whose rows differ")


def _umap_labels(points, k, seed, n_components=10, n_neighbors=UMAP_NEIGHBORS, n_init=5, n_epochs=None):
    """UMAP of ``points`` and a full-covariance GMM on the embedding: ``(labels, report)``. ``n_epochs``:
    UMAP's optimisation epochs (None: UMAP's own)."""
    try:
        import umap
    except ImportError:
        raise ConfigError("--init umap needs the umap-learn package; pip install umap-learn, or use --init gmm") \
            from None
    n = points.shape[0]
    check_start_data("umap", n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # umap warns that random_state disables its parallelism
        embedding = umap.UMAP(n_components=min(n_components, n - 2), n_neighbors=min(n_neighbors, n - 1),
                              min_dist=0.0, random_state=seed, n_epochs=n_epochs).fit_transform(points)
    from sklearn.mixture import GaussianMixture

    gmm = GaussianMixture(k, covariance_type="full", n_init=n_init, random_state=seed, reg_covar=1e-5)
    labels = gmm.fit(embedding).predict(embedding)
    return labels, {"umap_dims": embedding.shape[1], "umap_neighbors": min(n_neighbors, n - 1),
                    "umap_epochs": n_epochs, "embedding_gmm_log_likelihood": float(gmm.score(embedding))}


def _umap_start(codes, k, seed, n_epochs=None, n_neighbors=UMAP_NEIGHBORS):
    """Ours (N2D's recipe): UMAP of the codes, a full-covariance GMM on the embedding, moments in latent space."""
    labels, report = _umap_labels(codes, k, seed, n_neighbors=n_neighbors, n_epochs=n_epochs)
    return (labels, *_moments(codes, labels, k), report)


def _umap_inputs_start(codes, k, seed, *, inputs, n_epochs=None, n_neighbors=UMAP_NEIGHBORS):
    """The same with UMAP of the data themselves rather than of their codes (small, low-dimensional data such as
    the 8x8 digits, whose pixels UMAP clusters better than an autoencoder's codes); moments in latent space."""
    labels, report = _umap_labels(inputs.reshape(inputs.shape[0], -1), k, seed, n_neighbors=n_neighbors,
                                  n_epochs=n_epochs)
    return (labels, *_moments(codes, labels, k), report)


INIT_STRATEGIES.builtin("gmm", _gmm_start)
INIT_STRATEGIES.builtin("umap", _umap_start)
INIT_STRATEGIES.builtin("umap-inputs", _umap_inputs_start)


def register_init(name, fn=None, *, override=False):
    """Add an initialisation strategy ``fn(codes, num_clusters, seed) -> (labels, weights, means, scales,
    report)`` to :data:`~pyro_gmvae.registry.INIT_STRATEGIES`; usable as a decorator."""
    if fn is None:
        return lambda f: register_init(name, f, override=override)
    if not callable(fn):
        raise ConfigError(f"register_init takes a callable, got {fn!r}")
    return INIT_STRATEGIES.register(name, fn, override=override)


def initialise_prior(prior, guide, x, *, strategy="gmm", seed=0, n_epochs=None, n_neighbors=None):
    """Fit ``strategy`` to the encoder means and copy its mixture into ``prior`` (``init_from_gmm``).
    A strategy with an ``inputs`` parameter also gets the data themselves (numpy), as ``umap-inputs`` does;
    ``n_epochs`` and ``n_neighbors`` (not None) go to a strategy with such a parameter (UMAP's, for the umap
    starts).

    Returns ``(labels, report)``: the start's cluster of every datapoint (a tensor on ``x``'s device)."""
    INIT_STRATEGIES.check(strategy)
    fn, options = INIT_STRATEGIES[strategy], {}
    parameters = inspect.signature(fn).parameters
    if n_epochs is not None:
        if "n_epochs" not in parameters:
            raise ConfigError(f"the start {strategy!r} takes no n_epochs; drop it (umap_epochs / --umap-epochs)")
        options["n_epochs"] = n_epochs
    if n_neighbors is not None:
        if "n_neighbors" not in parameters:
            raise ConfigError(f"the start {strategy!r} takes no n_neighbors; drop it (umap_neighbors / "
                              "--umap-neighbors)")
        options["n_neighbors"] = n_neighbors
    if "inputs" in parameters:
        options["inputs"] = x.detach().double().cpu().numpy()
    codes = encode_mean(guide, x).double().cpu().numpy()
    labels, weights, means, scales, report = fn(codes, prior.num_clusters, seed, **options)
    if getattr(prior, "full_covariance", False):  # the labels' full covariances, not the strategy's diagonal
        weights, means, scales = _full_moments(codes, np.asarray(labels), prior.num_clusters)
    prior.init_from_gmm(weights, means, scales)
    scales = np.asarray(scales)
    stds = scales if scales.ndim == 2 else np.sqrt((scales ** 2).sum(-1))  # a Cholesky factor's row norms
    report = {"init": strategy, **report, "init_mean_component_scale": float(np.mean(stds))}
    return torch.as_tensor(np.asarray(labels), dtype=torch.long, device=x.device), report


@torch.no_grad()
def init_guide_scale(guide, scale, site=LATENT):
    """Start ``q(site | x)`` with the constant standard deviation ``scale``: the scale head's weights are zeroed
    and its bias set, so VaDE's first epochs do not blur a start whose clusters are narrower than the
    untrained head's ~0.7. Only for the diagonal head (others are left as they are; returns False)."""
    head = guide.heads[site]
    raw = getattr(head, "scale_raw", None)
    if not isinstance(raw, torch.nn.Linear):
        return False
    raw.weight.zero_()
    raw.bias.copy_(inverse_softplus(torch.full_like(raw.bias, float(scale))))
    return True


def warm_up_loss(model, guide, x, labels, elbo=None, label_weight=0.0):
    """The warm-up's loss on ``x``: the negative ELBO with the cluster observed at ``labels`` in the model.
    A guide with its own ``q(c | x)`` (a :class:`~pyro_gmvae.inference.cluster_inference.ClusterGuide`) is
    run at the same clusters (``guide.given_cluster``): ``q(h | x, c)``, reparameterised, rather than its
    mixture over ``q(c | x)``.

    ``label_weight`` (lambda, ours) adds ``-lambda log p(c = label | latents)``, the cross-entropy of the
    model's own cluster posterior against the start's labels at the guide's sample: the observed-cluster
    ELBO minus the enumerated ELBO on the same guide trace (the decoder terms cancel, the cluster is summed
    exactly), so that the encoder moves the codes a Gaussian component would misclassify to their label's
    component rather than only pulling them toward its mean. The weight needs a one-particle ``elbo`` (the
    warm-up's own).
    """
    elbo = make_elbo() if elbo is None else elbo
    given = getattr(guide, "given_cluster", None)
    run_guide = guide if given is None else (lambda data: given(data, labels))
    observed = poutine.condition(model, data={CLUSTER: labels})
    if not label_weight:
        return elbo.differentiable_loss(observed, run_guide, x)
    if given is not None:
        raise ConfigError(f"the warm-up's label weight ({label_weight}) needs the exact enumerated clusters: "
                          "the guide has its own q(c | x); pass init_warmup_label_weight=0 "
                          "(--init-warmup-label-weight 0) or cluster_inference='exact'")
    if elbo.num_particles != 1:
        raise ConfigError(f"the warm-up's label weight ({label_weight}) replays one guide draw in both ELBOs: "
                          f"pass an ELBO with num_particles=1 (got {elbo.num_particles}), or label_weight=0")
    trace = poutine.trace(run_guide).get_trace(x)
    shared = poutine.replay(run_guide, trace=trace)
    loss = elbo.differentiable_loss(observed, shared, x)
    return loss + label_weight * (loss - elbo.differentiable_loss(model, shared, x))


def warm_up(model, guide, x, labels, *, epochs, batch_size, lr, seed, label_weight=0.0, progress=False,
            on_epoch_end=None):
    """``epochs`` of the ELBO with the cluster observed at ``labels`` (Adam over all parameters; see
    :func:`warm_up_loss`, with ``label_weight``); returns the loss per datapoint of each epoch
    (``on_epoch_end(epoch, loss)`` is called after each). The enumerated parents of the cluster (a hierarchy's
    super-cluster) stay enumerated."""
    elbo = make_elbo()
    params = [p for m in (model, guide) for p in m.parameters() if p.requires_grad]

    def batch_loss(idx):
        return warm_up_loss(model, guide, x[idx], labels[idx], elbo, label_weight)

    losses = _minibatch_epochs(batch_loss, params, x.shape[0], x.device, epochs=epochs, batch_size=batch_size,
                               lr=lr, seed=seed + 2, desc="warm-up",
                               fix="lower --pretrain-lr or pass --init-warmup-epochs 0", progress=progress,
                               on_epoch_end=on_epoch_end)
    for p in params:
        p.grad = None
    return losses

