"""The start of a run as :class:`~pyro_gmvae.inference.training.Trainer` runs it, after pretraining: the mixture
from the start's labels, the ``q(z | x)`` scale and the warm-up (:func:`run_start`), or the best of several
starts by the model's ELBO (:func:`best_start`). The stages themselves are :mod:`.pretrain`'s."""

import copy
import time

import torch

from ..evaluation.marginal import elbo_per_datapoint
from ..evaluation.metrics import hungarian_accuracy
from .pretrain import init_guide_scale, initialise_prior, warm_up
from .state import rng_state, set_rng_state

#: guide samples per datapoint of the ELBO that chooses among several starts (``umap_neighbors``)
START_ELBO_SAMPLES = 10


def run_start(trainer, data, n_neighbors=None, on_epoch_end=None):
    """The mixture from the start's labels (``config.init``; UMAP's ``n_neighbors``), the ``q(z | x)`` scale
    and the warm-up (``on_epoch_end(epoch, loss)`` after each of its epochs); returns the report, with the
    warm-up's loss per epoch in ``warmup_losses``."""
    config, prior, guide = trainer.config, trainer.model.prior, trainer.guide
    options = "" if n_neighbors is None else f", UMAP's {n_neighbors} neighbours"
    trainer._say(f"initialising the {prior.num_clusters}-component mixture from the encoder means "
                 f"(--init {config.init}{options})")
    t1 = time.perf_counter()
    labels, report = initialise_prior(prior, guide, data.x, strategy=config.init, seed=config.seed,
                                      n_epochs=config.umap_epochs, n_neighbors=n_neighbors)
    report["init_seconds"] = time.perf_counter() - t1
    if data.y is not None:  # the start's own labels (UMAP + GMM, or the GMM): what the model starts from
        report["start_labels_acc"] = hungarian_accuracy(data.y, labels)
    if config.init_guide_scale is not None:
        init_guide_scale(guide, config.init_guide_scale)
    report.update(start_scores(trainer, data, "init"))
    if config.init_warmup_epochs:
        trainer._say(f"warm-up: {config.init_warmup_epochs} epochs with the clusters fixed at the start's labels")
        warm = warm_up(trainer.model, guide, data.x, labels, epochs=config.init_warmup_epochs,
                       batch_size=config.batch_size, lr=config.pretrain_lr, seed=config.seed,
                       label_weight=config.init_warmup_label_weight, progress=trainer.progress,
                       on_epoch_end=on_epoch_end)
        report["warmup_loss"] = warm[-1]
        report["warmup_losses"] = warm
        report.update(start_scores(trainer, data, "warmup"))
    return report


def best_start(trainer, data, candidates):
    """A start (:func:`run_start`) for each of UMAP's neighbourhood sizes ``candidates``, each from the same
    autoencoder and random state; the one whose model has the highest ELBO on ``data`` (enumerated clusters,
    :data:`START_ELBO_SAMPLES` guide samples per datapoint, the same noise for every candidate) is kept, with
    the random state it left. Labels are never read to choose: the report's scores are for reading."""
    modules, device = (trainer.model, trainer.guide), trainer.device
    autoencoder, rng = [copy.deepcopy(m.state_dict()) for m in modules], rng_state()
    tried, best = [], None
    for n_neighbors in candidates:
        for module, state in zip(modules, autoencoder):
            module.load_state_dict(state)
        set_rng_state(rng)
        report = run_start(trainer, data, n_neighbors)
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []), torch.no_grad():
            torch.manual_seed(trainer.config.seed)
            elbo = float(elbo_per_datapoint(trainer.model, trainer.guide, data, START_ELBO_SAMPLES).mean())
        tried.append({"umap_neighbors": n_neighbors, "elbo": elbo,
                      **{k: v for k, v in report.items() if k.endswith(("_acc", "_nmi", "_ari"))}})
        if best is None or elbo > best[0]:
            best = (elbo, [copy.deepcopy(m.state_dict()) for m in modules], rng_state(), report, n_neighbors)
    elbo, states, rng, report, chosen = best
    for module, state in zip(modules, states):
        module.load_state_dict(state)
    set_rng_state(rng)
    scores = ", ".join(f"{t['umap_neighbors']}: {t['elbo']:.3f}" for t in tried)
    trainer._say(f"kept the start from UMAP's {chosen} neighbours: ELBO {elbo:.3f} per datapoint (tried {scores})")
    return {**report, "umap_neighbors": chosen, "start_elbo": elbo, "start_candidates": tried}


def start_scores(trainer, data, prefix):
    """acc/NMI/ARI of the model as it stands, for the report only: the start's scores never choose anything."""
    if data.y is None:
        return {}
    with torch.random.fork_rng(devices=[trainer.device] if trainer.device.type == "cuda" else []):
        scores = trainer.evaluate(data)  # leaves the random state of training as it was
    return {f"{prefix}_{k}": v for k, v in scores.items() if k in ("acc", "nmi", "ari")}
