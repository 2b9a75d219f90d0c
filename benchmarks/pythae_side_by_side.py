"""Our VAE (and VampPrior) beside pythae's on the same data, networks, optimiser, epochs and core (issue 31).

    taskset -c 1 /work/venv-peers/bin/python benchmarks/pythae_side_by_side.py --epochs 10 \
        --ours vae:1e-4 vae:1e-8 --pythae vae --out benchmarks/results/pythae-side-by-side.json

Data: the 60k MNIST training images (``--data-dir``, IDX files) binarized once (our static draw), the first
``--num-test`` test images binarized the same way. Networks: 784-300-300 ReLU MLPs for the encoder and the
decoder, latent 40, written for both libraries; Adam 1e-3, batch 100. Each library's training is timed in
CPU seconds of this process (one thread), so the per-epoch ratio is measured in one run on one core. Scores:
ours by ``is-guide`` (``--num-samples`` draws of the guide, the clusters, if any, enumerated), pythae's by its
own ``get_nll`` with as many samples. pythae is a peer, installed in a separate venv, never a dependency.
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from pyro_gmvae import ModelConfig, TrainConfig, build
from pyro_gmvae.data import from_tensor, load_dataset
from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.estimators import estimate_log_likelihood
from pyro_gmvae.evaluation.marginal import KHAT_THRESHOLD
from pyro_gmvae.inference.training import Trainer

LATENT, HIDDEN = 40, 300


def data(data_dir, num_test):
    train = binarize_static(load_dataset("mnist", data_dir=data_dir, split="train").x)
    test = binarize_static(load_dataset("mnist", data_dir=data_dir, split="test").x[:num_test])
    return train, test


def ours(kind, adam_eps, train, test, epochs, num_samples, seed):
    prior = {"vae": None, "vamp": "vamp"}[kind]
    torch.manual_seed(seed)
    model, guide = build(ModelConfig(model="vae", prior=prior, num_clusters=500 if prior else 10, data_dim=784,
                                     latent_dim=LATENT, network="mlp300", likelihood="bernoulli"))
    config = TrainConfig(epochs=epochs, batch_size=100, lr=1e-3, lr_decay=1.0, min_lr=1e-3, adam_eps=adam_eps,
                         seed=seed, jit=False, pretrain_epochs=0)
    trainer = Trainer(model, guide, config, progress=False, phases=False)
    steps = []
    train_epoch = trainer.train_epoch

    def timed(x):  # the optimisation alone, beside the whole epoch (which adds our per-epoch scores)
        t = time.process_time()
        out = train_epoch(x)
        steps.append(time.process_time() - t)
        return out

    trainer.train_epoch = timed
    t0 = time.process_time()
    trainer.fit(from_tensor(train, likelihood="bernoulli"))
    seconds = (time.process_time() - t0) / epochs
    model.eval(), guide.eval()
    result = estimate_log_likelihood(model, guide, test, "is-guide", num_samples=num_samples)
    summary = result.summary()
    return {"library": "ours", "model": kind, "prior": prior or "standard-normal", "guide": "diagonal",
            "objective": "elbo", "adam_eps": adam_eps, "cpu_seconds_per_epoch": seconds,
            "cpu_seconds_per_epoch_optimisation": sum(steps) / len(steps),
            "log_likelihood": summary["log_likelihood"], "log_likelihood_mc_stderr": summary.get("log_likelihood_mc_stderr"),
            "khat_share_above_0_7": summary.get("khat_share_above_0_7"), "estimator": "is-guide"}


def pythae_vae(train, test, epochs, num_samples, seed, out_dir):
    from pythae.data.datasets import BaseDataset
    from pythae.models import VAE, VAEConfig
    from pythae.models.base.base_utils import ModelOutput
    from pythae.models.nn import BaseDecoder, BaseEncoder
    from pythae.trainers import BaseTrainer, BaseTrainerConfig

    class Encoder(BaseEncoder):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                           torch.nn.ReLU())
            self.loc, self.log_var = torch.nn.Linear(HIDDEN, LATENT), torch.nn.Linear(HIDDEN, LATENT)

        def forward(self, x):
            h = self.net(x.reshape(x.shape[0], -1))
            return ModelOutput(embedding=self.loc(h), log_covariance=self.log_var(h))

    class Decoder(BaseDecoder):
        def __init__(self):
            super().__init__()
            self.net = torch.nn.Sequential(torch.nn.Linear(LATENT, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, HIDDEN),
                                           torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 784), torch.nn.Sigmoid())

        def forward(self, z):
            return ModelOutput(reconstruction=self.net(z).reshape(z.shape[0], 1, 28, 28))

    torch.manual_seed(seed)
    model = VAE(VAEConfig(input_dim=(1, 28, 28), latent_dim=LATENT, reconstruction_loss="bce"),
                encoder=Encoder(), decoder=Decoder())
    config = BaseTrainerConfig(output_dir=str(out_dir), num_epochs=epochs, learning_rate=1e-3,
                               per_device_train_batch_size=100, per_device_eval_batch_size=100, no_cuda=True,
                               steps_saving=None, seed=seed)
    images = train.reshape(-1, 1, 28, 28)
    trainer = BaseTrainer(model=model, train_dataset=BaseDataset(images, torch.zeros(len(images))),
                          training_config=config)
    t0 = time.process_time()
    trainer.train()
    seconds = (time.process_time() - t0) / epochs
    model.eval()
    nll = model.get_nll(test.reshape(-1, 1, 28, 28), n_samples=num_samples, batch_size=min(num_samples, 1000))
    return {"library": "pythae", "model": "vae", "prior": "standard-normal", "guide": "diagonal", "objective": "elbo",
            "adam_eps": 1e-8, "cpu_seconds_per_epoch": seconds, "log_likelihood": float(nll),  # get_nll returns log p(x), < 0
            "khat_share_above_0_7": None, "estimator": "pythae get_nll (IS with the guide)"}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default=str(Path(__file__).resolve().parents[2] / "shared/data/mnist"))
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--num-test", type=int, default=1000)
    p.add_argument("--num-samples", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--ours", nargs="*", default=["vae:1e-4"], help="KIND:ADAM_EPS, KIND vae or vamp")
    p.add_argument("--pythae", nargs="*", default=[], help="vae")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    torch.set_num_threads(1)
    train, test = data(args.data_dir, args.num_test)
    common = {"dataset": "binarized MNIST (static: one draw of the 60k training images; the first "
                         f"{args.num_test} test images, drawn alike)", "latent_dim": LATENT,
              "network": "784-300-300 MLP encoder and decoder", "epochs": args.epochs, "batch_size": 100,
              "lr": 1e-3, "num_samples": args.num_samples, "seeds": [args.seed], "bdmc_gap": None}
    rows = []
    out = Path(args.out)
    for spec in args.ours:
        kind, eps = spec.split(":")
        rows.append({**common, **ours(kind, float(eps), train, test, args.epochs, args.num_samples, args.seed)})
        out.write_text(json.dumps({"rows": rows, "command": " ".join(__import__("sys").argv)}, indent=1))
        print(rows[-1], flush=True)
    for kind in args.pythae:
        with tempfile.TemporaryDirectory() as tmp:  # pythae saves its model: not into the results
            rows.append({**common, **pythae_vae(train, test, args.epochs, args.num_samples, args.seed, tmp)})
        out.write_text(json.dumps({"rows": rows, "command": " ".join(__import__("sys").argv)}, indent=1))
        print(rows[-1], flush=True)


if __name__ == "__main__":
    main()
