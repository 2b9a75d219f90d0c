"""Issue 20, item 1: where does the vade-mnist protocol lose the accuracy of its start's labels?

One seed of the preset, stage by stage, with the clustering scored after every stage (the data's labels are
read for the score only):

1. the autoencoder (20 epochs, cached in ``--cache``, so that the later stages can be varied cheaply);
2. UMAP + GMM labels of the codes (``start_labels_acc``), then offline: how well a mixture of the
   labels' moments classifies the codes with diagonal and with full covariances (the ceiling of the
   paper's diagonal latent mixture on these codes, and of a full-covariance one);
3. the warm-up (the cluster observed at the start's labels), acc after every epoch, ``--warmup-lr``;
4. the SVI epochs of the preset, acc after every epoch, optionally with a part frozen (``--freeze``).

    python benchmarks/probes/start_loss.py --seed 0 --warmup-epochs 20 --data-dir ../shared/data/mnist \
        --out benchmarks/probes/start_loss_s0_diagonal.json
    python benchmarks/probes/start_loss.py --seed 0 --warmup-epochs 20 --prior full-mixture \
        --data-dir ../shared/data/mnist --out benchmarks/probes/start_loss_s0_full.json
    python benchmarks/probes/start_loss.py --table benchmarks/probes/start_loss_s0_*.json   # the results table
"""

import argparse
import json
import time
import warnings
from pathlib import Path

import numpy as np
import pyro
import torch
from scipy.stats import multivariate_normal

from pyro_gmvae import ModelConfig, Trainer, TrainConfig, build, load_dataset
from pyro_gmvae.defaults import resolve
from pyro_gmvae.evaluation.metrics import hungarian_accuracy
from pyro_gmvae.inference.amortized import encode_mean
from pyro_gmvae.registry import INIT_STRATEGIES
from pyro_gmvae.inference.pretrain import (_full_moments, _moments, initialise_prior, pretrain_autoencoder,
                                          warm_up_loss)
from pyro_gmvae.inference.elbo import make_elbo
from pyro_gmvae.inference.minibatch import permutation


def umap_start(codes, k, seed, n_epochs):
    """The library's ``umap`` start (pretrain._umap_start) with UMAP's ``n_epochs`` set."""
    import umap
    from sklearn.mixture import GaussianMixture

    embedding = umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=seed,
                          n_epochs=n_epochs).fit_transform(codes)
    labels = GaussianMixture(k, covariance_type="full", n_init=5, random_state=seed, reg_covar=1e-5) \
        .fit(embedding).predict(embedding)
    return (labels, *_moments(codes, labels, k), {})


def classify(codes, labels, k, full):
    """argmax_c of share_c N(code; moments of the codes labelled c), diagonal or full covariance."""
    scores = []
    for c in range(k):
        pts = codes[labels == c]
        cov = np.cov(pts.T) if full else np.diag(pts.var(0))
        scores.append(np.log(len(pts) / len(codes)) + multivariate_normal(pts.mean(0), cov).logpdf(codes))
    return np.argmax(np.stack(scores, 1), 1)


TABLE = "Where the start's accuracy goes (issue 20)"
RESULTS = Path(__file__).resolve().parents[1] / "results" / "start-loss.json"


def table(paths, out=RESULTS):
    """One row per probe output: accuracy (%) at the start, after warm-up epochs 3/10/15/20 and SVI epochs 1/5."""
    rows = []
    for path in paths:
        run = json.loads(Path(path).read_text())
        log, a = run["log"], run["args"]
        start = next(r for r in log if r["stage"] == "start")
        warm = {r["epoch"]: r["acc"] for r in log if r["stage"] == "warmup"}
        svi = {r["epoch"]: r for r in log if r["stage"] == "svi"}
        pct = lambda v: None if v is None else round(100 * v, 2)  # noqa: E731
        row = {"table": TABLE, "prior": a.get("prior", "mixture"), "seed": a["seed"],
               "autoencoder epochs": a.get("ae_epochs", 20), "label weight": a.get("warmup_label_weight", 0.0),
               "start labels acc": pct(start["start_labels_acc"]), "mixture at the start": pct(start["init_acc"]),
               "codes, diagonal classifier": pct(start["diag_classifier_acc"]),
               "codes, full classifier": pct(start["full_classifier_acc"])}
        row.update({f"warm-up {e}": pct(warm.get(e)) for e in (1, 3, 10, 15, 20)})
        agree = {r["epoch"]: r["agrees_with_start"] for r in log if r["stage"] == "warmup"}
        row["agrees with the start after the warm-up"] = pct(agree[max(agree)]) if agree else None
        row.update({f"SVI {e}": pct(svi.get(e, {}).get("acc")) for e in (1, 5)})
        row["ELBO after SVI 5"] = round(svi[5]["elbo"], 2) if 5 in svi else None
        row["command"] = (f"python benchmarks/probes/start_loss.py --seed {a['seed']} --ae-epochs "
                          f"{a.get('ae_epochs', 20)} --warmup-epochs {a['warmup_epochs']} --warmup-label-weight "
                          f"{a.get('warmup_label_weight', 0.0):g} --svi-epochs {a.get('svi_epochs', 5)} --prior "
                          f"{a.get('prior', 'mixture')} --data-dir ../shared/data/mnist")
        rows.append(row)
    notes = ("The vade-mnist start (20 or 40 autoencoder epochs, UMAP + GMM labels of the codes), stage by stage, on all "
             "70k MNIST images; accuracy (%, Hungarian) of the model's clusters after each stage (the data's labels "
             "are read for the score only). 'codes, diagonal/full classifier': the labels' moments as a mixture "
             "with diagonal or full covariances, classifying the codes (the ceiling of each latent mixture before "
             "the encoder moves). Warm-up: the cluster observed at the start's labels, lr 1e-3, batch 100, plus "
             "lambda times the cross-entropy -log p(c = start label | z) where the label weight lambda > 0; then the "
             "preset's SVI (lr 1e-4). One seed, one thread on a shared core (benchmarks/probes/start_loss.py).")
    out.write_text(json.dumps({"rows": rows, "tables": {TABLE: {"notes": notes}}}, indent=1) + "\n")
    print(f"wrote {out}")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--dataset", default="mnist", help="digits: a smoke test of the probe")
    p.add_argument("--ae-epochs", type=int, default=20)
    p.add_argument("--ae-batch", type=int, default=256)
    p.add_argument("--ae-lr", type=float, default=1e-3)
    p.add_argument("--bf16", action="store_true", help="the encoder and decoder under bf16 autocast")
    p.add_argument("--umap-epochs", type=int, help="UMAP's n_epochs (default: UMAP's own, 200 for large data)")
    p.add_argument("--cache", default=str(Path(__file__).resolve().parents[2] / "runs" / "probe-cache"),
                   help="where the autoencoder and its start labels are cached (default: runs/probe-cache, outside git)")
    p.add_argument("--warmup-epochs", type=int, default=20)
    p.add_argument("--warmup-lr", type=float, default=1e-3)
    p.add_argument("--warmup-batch", type=int, default=100)
    p.add_argument("--warmup-label-weight", type=float, default=0.0,
                   help="lambda of the warm-up's -log p(c = start label | z) term (pretrain.warm_up_loss)")
    p.add_argument("--svi-epochs", type=int, default=5)
    p.add_argument("--svi-lr", type=float, default=1e-4)
    p.add_argument("--prior", default="mixture", help="full-mixture: full-covariance components")
    p.add_argument("--freeze", choices=["none", "prior", "encoder", "decoder"], default="none")
    p.add_argument("--out")
    p.add_argument("--table", nargs="+", metavar="PROBE_JSON", help="write the results table from probe outputs")
    args = p.parse_args()
    if args.table:
        return table(args.table)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    log = []

    def say(**row):
        row["t"] = round(time.perf_counter() - t0, 1)
        log.append(row)
        print(json.dumps(row), flush=True)

    t0 = time.perf_counter()
    model_kw, train_kw, data_kw = resolve({"dataset": args.dataset, "seed": args.seed, "lr": args.svi_lr,
                                           "epochs": args.svi_epochs, "prior": args.prior,
                                           "compute_dtype": "bfloat16" if args.bf16 else None},
                                          "vade-mnist")
    if args.dataset == "mnist":
        data_kw["data_dir"] = args.data_dir
    data = load_dataset(data_kw.pop("dataset"), **data_kw)
    y = data.y.numpy()
    model, guide = build(ModelConfig(data_dim=data.data_dim, likelihood=data.likelihood, **model_kw))
    config = TrainConfig(**{**train_kw, "pretrain_epochs": 0, "init_warmup_epochs": 0})
    trainer = Trainer(model, guide, config, progress=False)
    tag = f"e{args.ae_epochs}-b{args.ae_batch}-lr{args.ae_lr:g}" + ("-bf16" if args.bf16 else "") \
        + (f"-u{args.umap_epochs}" if args.umap_epochs else "")
    cache = Path(args.cache) / f"ae-{args.dataset}-{tag}-s{args.seed}.pt".replace("-b256-lr0.001", "")
    with trainer.local_params:
        pyro.set_rng_seed(args.seed)
        if cache.exists():
            state = torch.load(cache, weights_only=True)
            model.load_state_dict({k: v for k, v in state["model"].items() if not k.startswith("prior.")},
                                  strict=False)
            guide.load_state_dict(state["guide"])
            labels = state["labels"]
            # the start's mixture from the cached labels, as initialise_prior sets it for this prior
            codes = encode_mean(guide, data.x).double().numpy()
            moments = _full_moments if getattr(model.prior, "full_covariance", False) else _moments
            model.prior.init_from_gmm(*moments(codes, labels.numpy(), 10))
            say(stage="autoencoder", cached=str(cache))
        else:
            pretrain_autoencoder(model, guide, data.x, epochs=args.ae_epochs, batch_size=args.ae_batch, lr=args.ae_lr,
                                 seed=args.seed)
            say(stage="autoencoder", epochs=args.ae_epochs)
            strategy = "umap"
            if args.umap_epochs:
                strategy = "umap-probe"
                INIT_STRATEGIES.register(strategy, lambda codes, k, seed: umap_start(codes, k, seed, args.umap_epochs),
                                         override=True)
            labels, _ = initialise_prior(model.prior, guide, data.x, strategy=strategy, seed=args.seed)
            say(stage="umap")
            cache.parent.mkdir(parents=True, exist_ok=True)
            torch.save({"model": {k: v for k, v in model.state_dict().items() if not k.startswith("prior.")},
                        "guide": guide.state_dict(), "labels": labels}, cache)
        codes = encode_mean(guide, data.x).double().numpy()
        lab = labels.numpy()
        say(stage="start", start_labels_acc=hungarian_accuracy(y, lab),
            diag_classifier_acc=hungarian_accuracy(y, classify(codes, lab, 10, False)),
            diag_agrees_with_start=float(np.mean(classify(codes, lab, 10, False) == lab)),
            full_classifier_acc=hungarian_accuracy(y, classify(codes, lab, 10, True)),
            full_agrees_with_start=float(np.mean(classify(codes, lab, 10, True) == lab)),
            init_acc=trainer.evaluate(data)["acc"])

        # the warm-up, one Adam over all epochs as pretrain.warm_up, scored after each
        params = [q for m in (model, guide) for q in m.parameters() if q.requires_grad]
        opt = torch.optim.Adam(params, lr=args.warmup_lr)
        elbo, g, n = make_elbo(), torch.Generator().manual_seed(args.seed + 2), data.num_datapoints
        for epoch in range(1, args.warmup_epochs + 1):
            perm, total = permutation(n, g, data.x.device), 0.0
            for s in range(0, n, args.warmup_batch):
                idx = perm[s:s + args.warmup_batch]
                loss = warm_up_loss(model, guide, data.x[idx], labels[idx], elbo, args.warmup_label_weight)
                opt.zero_grad()
                (loss / idx.shape[0]).backward()
                opt.step()
                total += loss.item()
            with torch.random.fork_rng():
                scores = trainer.evaluate(data)
            zc = encode_mean(guide, data.x).double().numpy()
            say(stage="warmup", epoch=epoch, loss=total / n, acc=scores["acc"],
                agrees_with_start=float(np.mean(trainer_labels(trainer, data) == lab)),
                full_classifier_acc=hungarian_accuracy(y, classify(zc, lab, 10, True)))
        for q in params:
            q.grad = None
    frozen = {"none": [], "prior": [model.prior], "encoder": [guide], "decoder": [model.decoder]}[args.freeze]
    for m in frozen:
        for q in m.parameters():
            q.requires_grad_(False)
    history = trainer.fit(data, on_epoch_end=lambda tr, row: say(stage="svi", epoch=row["epoch"], acc=row["acc"],
                                                                  elbo=row["elbo"]))
    del history
    if args.out:
        Path(args.out).write_text(json.dumps({"args": vars(args), "log": log}, indent=1) + "\n")


def trainer_labels(trainer, data):
    from pyro_gmvae.evaluation.responsibilities import cluster_marginals
    with trainer.local_params:
        return next(iter(cluster_marginals(trainer.model, trainer.guide, data.x).values())).argmax(-1).numpy()


if __name__ == "__main__":
    main()
