"""VaDE's initialisation: an autoencoder, then a diagonal Gaussian mixture on its codes.

The autoencoder reuses the guide's encoder (the mean of ``q(z | x)``) and the model's decoder,
so the weights carry over to VaDE unchanged. The mixture is scikit-learn's ``GaussianMixture``;
a fit that fails or degenerates is retried with a larger covariance regulariser.
"""

import numpy as np
import torch
from sklearn.mixture import GaussianMixture

from ..errors import TrainingError
from ..sites import LATENT


def encode_mean(guide, x, batch_size=1000):
    with torch.no_grad():
        return torch.cat([guide.site_dists(x[i:i + batch_size])[LATENT].mean
                          for i in range(0, x.shape[0], batch_size)])


def pretrain_autoencoder(model, guide, x, *, epochs, batch_size, lr, seed, progress=False):
    """Minimise ``-log p(x | z = mean q(z | x))`` over the encoder and decoder; returns the loss per epoch."""
    params = list(guide.encoder.parameters()) + list(guide.heads[LATENT].parameters()) \
        + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=lr)
    n, losses = x.shape[0], []
    g = torch.Generator().manual_seed(seed)
    bar = None
    if progress and epochs:
        from tqdm.auto import tqdm

        bar = tqdm(total=epochs, desc="pretrain", unit="epoch")
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g).to(x.device)
        total = 0.0
        for start in range(0, n, batch_size):
            xb = x[perm[start:start + batch_size]]
            z = guide.site_dists(xb)[LATENT].mean
            loss = -model.decoder.x_dist(z).log_prob(xb).sum()
            opt.zero_grad()
            (loss / xb.shape[0]).backward()
            opt.step()
            total += loss.item()
        losses.append(total / n)
        if not np.isfinite(losses[-1]):
            raise TrainingError("the pretraining loss became non-finite; lower --pretrain-lr")
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=round(losses[-1], 3))
    if bar is not None:
        bar.close()
    return losses


def fit_gmm(prior, guide, x, *, seed, tries=4, n_init=10):
    """Fit a diagonal GMM to the encoder means and copy it into ``prior``. Returns a report.

    scikit-learn keeps the best of ``n_init`` k-means-initialised EM runs by likelihood (no label is
    used); a fit that fails or leaves a component empty is retried with a 10x larger regulariser."""
    codes = encode_mean(guide, x).double().cpu().numpy()
    k = prior.num_clusters
    reg = 1e-6
    last_error = None
    for attempt in range(tries):
        try:
            gmm = GaussianMixture(k, covariance_type="diag", reg_covar=reg, n_init=n_init,
                                  random_state=seed + attempt, max_iter=200)
            gmm.fit(codes)
            ok = np.all(np.isfinite(gmm.means_)) and np.all(gmm.covariances_ > 0) \
                and np.min(gmm.weights_) > 1e-4
            if ok:
                prior.init_from_gmm(gmm.weights_, gmm.means_, np.sqrt(gmm.covariances_))
                return {"gmm_attempts": attempt + 1, "gmm_reg_covar": reg, "gmm_converged": bool(gmm.converged_),
                        "gmm_log_likelihood": float(gmm.score(codes))}
            last_error = "degenerate fit (an empty or collapsed component)"
        except (ValueError, np.linalg.LinAlgError) as e:
            last_error = str(e)
        reg *= 10
    raise TrainingError(f"the Gaussian mixture initialisation failed {tries} times ({last_error}); "
                        "pretrain longer or use fewer clusters")
