"""The library's defaults in one place, read by the command line and the Python API alike.

Defaults come in three layers: the dataclasses' own (:class:`~pyro_gmvae.config.ModelConfig`,
:class:`~pyro_gmvae.config.TrainConfig`), then the dataset's (:data:`DATASET_DEFAULTS`), then a preset
(:data:`PRESETS`); anything given explicitly (a flag, a keyword) wins.

>>> defaults_for("digits")["init"]
'umap-inputs'
>>> from pyro_gmvae import TrainConfig
>>> TrainConfig.for_dataset("digits").lr
0.0001
"""

from .errors import check_choice

#: A cluster counts as active (or used) above this share of the responsibility (or of the points); below it
#: the mixture is collapsing (the training's warning, ``num_active_clusters`` / ``num_used_clusters``).
COLLAPSE_THRESHOLD = 0.01

DATASET_DEFAULTS = {
    # the embedded default: VaDE with the paper's networks, short enough for 2 CPU cores
    # the start decides the result: UMAP of the pixels (the 8x8 digits' codes cluster worse than their pixels),
    # 30 warm-up epochs on its labels with the label weight 1 (the latent mixture learns to classify the codes as
    # the start does), then a short, gentle SVI phase (guide 08, issue 20); eager, as the VaDE MNIST presets (the
    # paper's networks gain nothing from tracing; the rows were measured eagerly)
    "digits": dict(network="vade", latent_dim=10, epochs=3, batch_size=100, lr=1e-4, min_lr=1e-5,
                   pretrain_epochs=30, init="umap-inputs", init_warmup_epochs=30, init_warmup_label_weight=1.0,
                   jit=False),
    "synthetic": dict(network="toy", latent_dim=2, noise_dim=2, epochs=30, batch_size=200, lr=2e-3,
                      pretrain_epochs=20),
    "mnist": dict(network="vade", latent_dim=10),
    "fashion-mnist": dict(network="vade", latent_dim=10),
    "svhn": dict(network="conv", latent_dim=10),
    "file": dict(network="small", latent_dim=10),
}

# the gmvae-mnist preset, which gmvae-mnist-k10 starts from
_GMVAE_MNIST = dict(model="gmvae", dataset="mnist", network="vade", num_clusters=16, latent_dim=10, noise_dim=10,
                    prior_hidden_dim=100, pretrain_epochs=20, pretrain_batch_size=256, init="umap",
                    init_warmup_epochs=3, batch_size=100, lr=1e-4, lr_decay=1.0, min_lr=1e-5, epochs=5,
                    num_particles=1, free_bits=0.5, likelihood="bernoulli", split="train")

# likelihood-grade training (issue 31, guide 12): the literature's protocol for a test log p(x) on binarized
# MNIST (Tomczak and Welling 2018; pythae's reproductions): the 60k training images binarized afresh each epoch,
# latent 40, an MLP 300-300 encoder and decoder, batch 100, Adam 1e-3 with torch's own epsilon, the KL warmed
# up linearly over 100 epochs, and no clustering start (no autoencoder pretraining, no warm-up on start labels):
# every prior trains from the same start at the same budget. Score with `evaluate RUN --split test`.
_BINARIZED_MNIST = dict(dataset="mnist", split="train", binarize="dynamic", likelihood="bernoulli", network="mlp300",
                        latent_dim=40, batch_size=100, lr=1e-3, lr_decay=1.0, min_lr=1e-4, adam_eps=1e-8,
                        kl_warmup_epochs=100, epochs=1000, pretrain_epochs=0, init_warmup_epochs=0,
                        init_warmup_label_weight=0.0, jit=False)

#: Settings for the papers' experiments (../shared/PAPERS.md), ours and theirs marked. Any flag overrides them.
#: vade-mnist-paper: the official script runs 3000 epochs; 300 is our default (lr reaches its floor by epoch ~220).
#: gmvae-mnist: trains on the 60k training images, so that the 10k test set is held out as in the paper;
#: K = 16 by default (the paper's table: 10, 16, 30). gmvae-synthetic: the paper's K = 8 on the arcs.
# The VaDE MNIST presets (and the digits default) train eagerly (jit=False): their rows in BENCHMARKS.md were
# measured so, and with the paper's networks tracing buys nothing (0.96x the eager step, a few percent, benchmarks/speed.py).
PRESETS = {
    # ours: the paper's model and networks from a manifold start (UMAP of the autoencoder's codes, N2D's
    # recipe), with full-covariance components in the latent mixture (diagonal ones cannot hold UMAP's
    # clusters of the codes), 10 warm-up epochs on the start's labels with the label weight 10 (without it the
    # model ends below its start's labels on every seed), then 5 epochs of SVI at lr 1e-4 (higher rates
    # scramble the start: BENCHMARKS.md); all 70k images, as the paper; 40 autoencoder epochs (the start's
    # labels: 97.1 / 97.5 / 97.7 % after 20 / 30 / 40 epochs, seed 0, the pretraining table)
    "vade-mnist": dict(jit=False, model="vade", dataset="mnist", network="vade", num_clusters=10, latent_dim=10,
                       prior="full-mixture", pretrain_epochs=40, pretrain_batch_size=256, pretrain_lr=1e-3,
                       init="umap", init_warmup_epochs=10, init_warmup_label_weight=10.0, batch_size=100, lr=1e-4,
                       lr_decay=0.9, lr_decay_every=10, min_lr=1e-5, adam_eps=1e-4, epochs=5),
    # ours, for time (issue 20: <= 6 minutes on 2 cores): the vade-mnist recipe with the networks under bfloat16
    # autocast, 25 autoencoder epochs at batch 512 and Adam 2e-3, UMAP's 100 epochs, 3 warm-up epochs, 1 SVI epoch
    "vade-mnist-fast": dict(model="vade", dataset="mnist", network="vade", num_clusters=10, latent_dim=10,
                            prior="full-mixture", compute_dtype="bfloat16", pretrain_epochs=25,
                            pretrain_batch_size=512, pretrain_lr=2e-3, init="umap", umap_epochs=100,
                            init_warmup_epochs=3, batch_size=100, lr=1e-4, lr_decay=0.9, lr_decay_every=10,
                            min_lr=1e-5, adam_eps=1e-4, epochs=1),
    # the same start and SVI with the paper's diagonal mixture and 3 warm-up epochs (vade-mnist before issue 20)
    "vade-mnist-diagonal": dict(jit=False, model="vade", dataset="mnist", network="vade", num_clusters=10,
                                latent_dim=10, pretrain_epochs=20, pretrain_batch_size=256, pretrain_lr=1e-3, init="umap",
                                init_warmup_epochs=3, batch_size=100, lr=1e-4, lr_decay=0.9, lr_decay_every=10,
                                min_lr=1e-5, adam_eps=1e-4, epochs=5),
    # the paper's protocol: GMM start, Adam 2e-3 x0.9 every 10 epochs (floor 2e-4); 300 of its 3000 epochs
    "vade-mnist-paper": dict(jit=False, model="vade", dataset="mnist", network="vade", num_clusters=10, latent_dim=10,
                             batch_size=100, lr=2e-3, lr_decay=0.9, lr_decay_every=10, min_lr=2e-4, adam_eps=1e-4,
                             epochs=300, pretrain_epochs=50, init="gmm"),
    # the public PyTorch port (GuHY777/VaDE-pytorch): 50 MSE-autoencoder epochs at batch 800, diagonal GMM,
    # Adam 2e-3 x0.95 every 10 epochs, batch 800
    "vade-mnist-port": dict(jit=False, model="vade", dataset="mnist", network="vade", num_clusters=10, latent_dim=10,
                            pretrain_epochs=50, pretrain_batch_size=800, pretrain_recipe="mse", init="gmm",
                            batch_size=800, lr=2e-3, lr_decay=0.95, lr_decay_every=10, min_lr=0.0, epochs=300),
    # ours: the paper's model and free bits (lambda 0.5) on the 60k training images, from the manifold start
    # with VaDE's MLP nets and a 10-d latent (conv nets and x=200/w=150 do not fit 2 CPU cores), then 5 epochs
    "gmvae-mnist": _GMVAE_MNIST,
    # ours, at K = 10 (issue 20's target): the gmvae-mnist recipe with 40 autoencoder epochs and 10 warm-up epochs
    # with the label weight 10, as vade-mnist; K = 16 and 30 have not been measured with it
    "gmvae-mnist-k10": dict(_GMVAE_MNIST, num_clusters=10, pretrain_epochs=40, init_warmup_epochs=10,
                            init_warmup_label_weight=10.0),
    # the official code's settings: conv nets, x 200, w 150, hidden 500, Adam 1e-4, batch 50, 100 epochs
    "gmvae-mnist-paper": dict(model="gmvae", dataset="mnist", network="conv", num_clusters=16, latent_dim=200,
                              noise_dim=150, prior_hidden_dim=500, batch_size=50, lr=1e-4, lr_decay=1.0, min_lr=1e-5,
                              epochs=100, num_particles=1, free_bits=0.5, likelihood="bernoulli", split="train",
                              pretrain_epochs=0),
    # likelihood-grade (see _BINARIZED_MNIST): the literature's priors at one protocol
    "vae-bmnist": dict(_BINARIZED_MNIST, model="vae"),
    "vamp-bmnist": dict(_BINARIZED_MNIST, model="vamp", num_pseudo_inputs=500),
    "vade-bmnist-k10": dict(_BINARIZED_MNIST, model="vade", num_clusters=10),
    "vade-bmnist-k500": dict(_BINARIZED_MNIST, model="vade", num_clusters=500),
    "gmvae-bmnist": dict(_BINARIZED_MNIST, model="gmvae", num_clusters=10, noise_dim=40),
    # Burda et al.'s IWAE objective, k = 50, on the VAE (no warm-up: the bound is not the ELBO)
    "iwae-bmnist": dict(_BINARIZED_MNIST, model="vae", objective="iwae", num_particles=50, kl_warmup_epochs=0),
    "gmvae-synthetic": dict(model="gmvae", dataset="synthetic", network="toy", num_clusters=8, latent_dim=2,
                            noise_dim=2, prior_hidden_dim=100, batch_size=200, lr=2e-3, epochs=60,
                            likelihood="normal", free_bits=0.5),
}

MODEL_FIELDS = ("model", "num_clusters", "num_super_clusters", "latent_dim", "noise_dim", "prior_hidden_dim",
                "prior", "guide", "likelihood", "network", "fixed_weights", "cluster_inference", "num_pseudo_inputs", "flow_layers")
TRAIN_FIELDS = ("epochs", "batch_size", "lr", "lr_decay", "lr_decay_every", "min_lr", "adam_eps",
                "num_particles", "objective", "kl_warmup_epochs", "jit", "seed", "pretrain_epochs", "pretrain_lr", "pretrain_recipe",
                "pretrain_batch_size", "init", "umap_epochs", "umap_neighbors", "init_guide_scale", "init_warmup_epochs",
                "init_warmup_label_weight",
                "free_bits",
                "free_bits_site", "free_bits_group", "temperature_start", "temperature_end", "temperature_decay", "device",
                "compute_dtype", "binarize")
DATA_FIELDS = ("dataset", "data_dir", "data_path", "split", "num_datapoints")


def defaults_for(dataset=None, preset=None):
    """The settings a run of ``dataset`` (default: the preset's, else ``digits``) starts from:
    the dataset's defaults, then the ``preset``'s, as one flat dict (``dataset`` included)."""
    preset_kw = {}
    if preset is not None:
        check_choice("preset", preset, PRESETS)
        preset_kw = PRESETS[preset]
    if dataset is None:
        dataset = preset_kw.get("dataset", "digits")
    return {**DATASET_DEFAULTS.get(dataset, {}), **preset_kw, "dataset": dataset}


def resolve(given=None, preset=None):
    """Merge dataset defaults < preset < ``given`` (the non-None flags or keywords); a preset's ``prior`` is left
    out when ``given`` names another model, and a default warm-up label weight when ``given`` names a cluster
    inference other than the exact one (the weight is the enumerated posterior's cross-entropy). Returns ``(model_kw, train_kw, data_kw)`` for ModelConfig, TrainConfig and load_dataset."""
    given = {k: v for k, v in (given or {}).items() if v is not None}
    base = defaults_for(given.get("dataset"), preset)
    if given.get("model", base.get("model")) != base.get("model"):
        base.pop("prior", None)  # a preset's prior is its model's: another model keeps its own
    if given.get("cluster_inference", "exact") != "exact":
        base.pop("init_warmup_label_weight", None)
    merged = {**base, **given}
    model_kw = {k: merged[k] for k in MODEL_FIELDS if k in merged}
    train_kw = {k: merged[k] for k in TRAIN_FIELDS if k in merged}
    data_kw = {k: merged[k] for k in DATA_FIELDS if k in merged}
    return model_kw, train_kw, data_kw
