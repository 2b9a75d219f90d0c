"""Probe (issue 31): why does our VAE train worse than pythae's at an equal budget? One factor at a time.

    taskset -c 1 python benchmarks/probes/vae_gap.py --variants enum-eps1e-4 enum meanfield --out FILE.json

The setting of benchmarks/pythae_side_by_side.py (binarized MNIST, static draw; 784-300-300, latent 40, Adam 1e-3,
batch 100, 10 epochs, seed 0), scored by is-guide with 1000 samples on the first 1000 test images. Variants:
``enum-eps1e-4``: TraceEnum_ELBO with VaDE's Adam epsilon (our old default); ``enum``: torch's epsilon 1e-8;
``meanfield``: the KL of q(z | x) to N(0, I) in closed form (Pyro's TraceMeanField_ELBO), as pythae computes it;
``exp-scale``: the guide's scale ``exp(raw)`` (a log-standard-deviation head, as pythae's log-variance) instead of
``softplus(raw) + 1e-3``.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import pyro
import torch
from pyro.infer import TraceMeanField_ELBO

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from pythae_side_by_side import data  # noqa: E402

from pyro_gmvae import ModelConfig, TrainConfig, build, register_guide  # noqa: E402
from pyro_gmvae.data import from_tensor  # noqa: E402
from pyro_gmvae.evaluation.estimators import estimate_log_likelihood  # noqa: E402
from pyro_gmvae.inference.training import Trainer  # noqa: E402


class ExpScaleHead(torch.nn.Module):
    """q = Normal(loc(h), exp(log_scale(h))): the log-standard-deviation parameterisation."""

    def __init__(self, in_dim, dim):
        super().__init__()
        self.loc = torch.nn.Linear(in_dim, dim)
        self.log_scale = torch.nn.Linear(in_dim, dim)

    def forward(self, h):
        return pyro.distributions.Normal(self.loc(h), self.log_scale(h).exp()).to_event(1)


register_guide("probe-exp-scale", ExpScaleHead)


def run(variant, train, test, epochs, seed):
    torch.manual_seed(seed)
    guide_name = "probe-exp-scale" if variant == "exp-scale" else "diagonal"
    model, guide = build(ModelConfig(model="vae", data_dim=784, latent_dim=40, network="mlp300", guide=guide_name))
    eps = 1e-4 if variant == "enum-eps1e-4" else 1e-8
    trainer = Trainer(model, guide, TrainConfig(epochs=epochs, batch_size=100, lr=1e-3, lr_decay=1.0, min_lr=1e-3,
                                                adam_eps=eps, seed=seed, jit=False, pretrain_epochs=0),
                      progress=False, phases=False)
    if variant == "meanfield":
        trainer.objective.elbo = TraceMeanField_ELBO(max_plate_nesting=1)
    t0 = time.process_time()
    trainer.fit(from_tensor(train, likelihood="bernoulli"))
    seconds = (time.process_time() - t0) / epochs
    pyro.set_rng_seed(0)
    with torch.no_grad():
        summary = estimate_log_likelihood(model.eval(), guide.eval(), test, "is-guide", num_samples=1000).summary()
    return {"variant": variant, "adam_eps": eps, "cpu_seconds_per_epoch": seconds, **summary}


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--variants", nargs="+", default=["enum", "meanfield"])
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[3] / "shared/data/mnist"))
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    train, test = data(args.data_dir, 1000)
    rows = []
    for variant in args.variants:
        rows.append(run(variant, train, test, args.epochs, 0))
        print(rows[-1], flush=True)
        Path(args.out).write_text(json.dumps({"command": " ".join(sys.argv), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
