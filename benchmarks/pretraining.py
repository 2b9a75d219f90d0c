"""How good is VaDE's initialisation? Accuracy of the GMM fitted on the autoencoder codes after N
pretraining epochs on MNIST (the lever behind VaDE's final accuracy).

    python benchmarks/pretraining.py --variant plain --checkpoints 5 10 20 --data-dir ../shared/data/mnist
    python benchmarks/pretraining.py --variant denoise --checkpoints 5 10 20 --data-dir ../shared/data/mnist

``plain`` is the library's pretraining loop (``pyro_gmvae.inference.pretrain``: the guide's z mean
and the decoder, Bernoulli log-likelihood, Adam 1e-3, batch 100); ``denoise`` masks 20 % of the input
pixels. After each checkpoint epoch a diagonal GMM (n_init 3) is fitted on the codes and scored
against the labels (labels are read only for the score). One thread, seed 0.
"""

import argparse
import time
import warnings

import torch
from sklearn.mixture import GaussianMixture

from pyro_gmvae import ModelConfig, build, load_dataset
from pyro_gmvae.evaluation.metrics import clustering_scores
from pyro_gmvae.inference.pretrain import encode_mean
from pyro_gmvae.sites import LATENT


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--variant", choices=["plain", "denoise"], default="plain")
    p.add_argument("--checkpoints", type=int, nargs="+", default=[5, 10, 20])
    p.add_argument("--data-dir", default="../shared/data/mnist")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    data = load_dataset("mnist", data_dir=args.data_dir)
    torch.manual_seed(0)
    model, guide = build(ModelConfig(model="vade", data_dim=784, num_clusters=10, latent_dim=10, network="vade"))
    params = list(guide.encoder.parameters()) + list(guide.heads[LATENT].parameters()) \
        + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    x, n, g, t0 = data.x, data.x.shape[0], torch.Generator().manual_seed(0), time.perf_counter()
    for epoch in range(1, max(args.checkpoints) + 1):
        perm = torch.randperm(n, generator=g)
        for start in range(0, n, 100):
            xb = x[perm[start:start + 100]]
            inputs = xb * (torch.rand_like(xb) > 0.2) if args.variant == "denoise" else xb
            loss = -model.decoder.x_dist(guide.site_dists(inputs)[LATENT].mean).log_prob(xb).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if epoch in args.checkpoints:
            codes = encode_mean(guide, x).double().numpy()
            pred = GaussianMixture(10, covariance_type="diag", n_init=3, random_state=0).fit_predict(codes)
            scores = clustering_scores(data.y, pred)
            print(f"{args.variant} epoch {epoch}: GMM acc {scores['acc']:.3f} nmi {scores['nmi']:.3f} "
                  f"({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
