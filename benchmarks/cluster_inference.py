"""The four cluster inference strategies side by side on the digits or a short MNIST protocol (issue 13; guide 10).

For VaDE and GMVAE and each seed, one start (autoencoder pretraining + a diagonal GMM on the codes, on the
training part) is shared by all four strategies, each then trained for the same epochs. Reported per
(model, strategy), mean ± std over seeds:

- ``train_objective``: the last epoch's training objective per datapoint (the strategy's own bound;
  ``relaxed``'s is the relaxed model's, not comparable);
- on the held-out fifth of the digits, whatever trained the model, with the cluster summed out exactly
  (:func:`~pyro_gmvae.evaluation.estimate_marginal_likelihood`): ``heldout_elbo``, the importance-weighted
  ``heldout_ll`` (``--num-samples``) and the worst PSIS ``khat_max``; ``acc`` (Hungarian) and ``nmi`` of
  the argmax responsibilities;
- ``step_ratio``: the median time of one training step over ``exact``'s (``torch.utils.benchmark``, the
  same process, the same batch of 100, the same start; the median over 5 rounds in which the four
  strategies are timed in turn).

A second table: the variance of each estimator's minibatch gradient at one fixed point (VaDE, seed 0, the
``amortized`` run's parameters; ``score-function``'s baseline first fitted there with every other parameter
frozen): the sum over parameters of the per-element variance over ``--grad-draws`` draws, for the
parameters every strategy shares (encoder, decoder, prior) and for the ``q(c | x)`` head.

Run ``python benchmarks/cluster_inference.py [--seeds 0 1 2] [--epochs 10]``; it writes
``benchmarks/results/cluster-inference.json`` and ``cluster-inference-gradients.json``. The short MNIST
protocol (``--dataset mnist --data-dir ../shared/data/mnist``: the first ``--num-datapoints`` images of a
seed-0 permutation of the 60k training images, split 80/20 by seed as the digits are) writes
``cluster-inference-mnist.json``; the gradient table is measured on the digits only.
"""

import argparse
import dataclasses
import json
import math
import platform
import sys
import time
import warnings

import numpy as np
import pyro
import torch
import torch.utils.benchmark as tbench

from pyro_gmvae import ModelConfig, TrainConfig, Trainer, build, from_tensor, load_dataset
from pyro_gmvae.evaluation import estimate_marginal_likelihood
from pyro_gmvae.evaluation.metrics import clustering_scores
from pyro_gmvae.evaluation.responsibilities import responsibilities
from pyro_gmvae.inference import cluster_inference as ci

STRATEGIES = ["exact", "amortized", "relaxed", "score-function"]


def split(data, seed, test_share=0.2):
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(data.num_datapoints, generator=g)
    n_test = int(test_share * data.num_datapoints)
    test, train = perm[:n_test], perm[n_test:]
    return (from_tensor(data.x[train], data.y[train], likelihood="bernoulli"),
            from_tensor(data.x[test], data.y[test], likelihood="bernoulli"))


def model_config(name, strategy, args):
    return ModelConfig(model=name, data_dim=args.data_dim, num_clusters=10, latent_dim=args.latent_dim, network=args.network,
                       likelihood="bernoulli", cluster_inference=strategy)


def train_config(seed, args, **kw):
    kw = {"pretrain_epochs": 0, **kw}
    return TrainConfig(epochs=args.epochs, batch_size=100, lr=args.lr, lr_decay=1.0, seed=seed, init="gmm",
                       temperature_start=1.0, temperature_end=0.5, temperature_decay=args.temperature_decay, **kw)


def start(name, seed, train, args):
    """Pretraining + GMM initialisation with the exact guide; returns the model and guide state dicts."""
    pyro.set_rng_seed(seed)
    model, guide = build(model_config(name, "exact", args))
    trainer = Trainer(model, guide, train_config(seed, args, pretrain_epochs=args.pretrain_epochs), progress=False)
    trainer.pretrain(train)
    return model.state_dict(), guide.state_dict()


def from_start(name, strategy, seed, state, args, partial=False):
    """The strategy's model and guide at ``state``; its own guide parameters (q(c|x), embedding, baseline) are
    left as initialised, and with ``partial`` those of another strategy in ``state`` are dropped."""
    pyro.set_rng_seed(seed)
    model, guide = build(model_config(name, strategy, args))
    model.load_state_dict(state[0])
    own = guide.state_dict()
    guide.load_state_dict({**own, **{k: v for k, v in state[1].items() if k in own or not partial}})
    return model, guide


def step_time(trainer, x, args):
    def step():
        trainer.cluster_inference.at_epoch(trainer.epoch)
        return trainer._step(x) if hasattr(trainer, "_step") else trainer.svi.step(x)

    timer = tbench.Timer(stmt="step()", globals={"step": step}, num_threads=torch.get_num_threads())
    return timer.blocked_autorange(min_run_time=args.min_run_time).median


def run(name, strategy, seed, state, train, test, args):
    model, guide = from_start(name, strategy, seed, state, args)
    trainer = Trainer(model, guide, train_config(seed, args), progress=False)
    t0 = time.perf_counter()
    history = trainer.fit(train)
    seconds = time.perf_counter() - t0
    with torch.no_grad():
        summary = estimate_marginal_likelihood(model, guide, test.x, num_samples=args.num_samples).summary()
        scores = clustering_scores(test.y, responsibilities(model, guide, test.x).argmax(-1))
    return trainer, {
        "train_objective": history[-1]["elbo"], "heldout_elbo": summary["elbo"],
        "heldout_ll": summary["log_likelihood"], "khat_max": summary["khat_max"],
        "acc": scores["acc"], "nmi": scores["nmi"], "train_seconds": seconds,
    }


def step_ratios(name, data, args, rounds=5):
    """Per strategy: the median over ``rounds`` of (its step's median time / exact's), the strategies measured
    in turn within each round (the same process, the same batch, the same start), so that drifts of a shared
    machine fall on all of them alike."""
    train, _ = split(data, 0)
    state = start(name, 0, train, args)
    trainers = {}
    for strategy in STRATEGIES:
        model, guide = from_start(name, strategy, 0, state, args)
        trainers[strategy] = Trainer(model, guide, train_config(0, args), progress=False)
    x = train.x[:100]
    ratios = {s: [] for s in STRATEGIES}
    for _ in range(rounds):
        times = {s: step_time(trainers[s], x, args) for s in STRATEGIES}
        for s in STRATEGIES:
            ratios[s].append(times[s] / times["exact"])
    return {s: float(np.median(r)) for s, r in ratios.items()}


def flat_grads(params):
    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1) for p in params])


def gradient_variance(name, trained_guide_state, model_state, x, args):
    """Per strategy: the summed per-element variance of the minibatch gradient over ``args.grad_draws``
    draws, for the shared parameters and for the q(c | x) head, at the amortized run's parameters."""
    rows = []
    for strategy in STRATEGIES:
        model, guide = from_start(name, strategy, 0, (model_state, trained_guide_state), args, partial=True)
        trainer = Trainer(model, guide, train_config(0, args), progress=False)
        objective = trainer.cluster_inference
        loss_fn = objective.make_elbo()
        train_model, train_guide = objective.model(model), objective.guide
        objective.at_epoch(args.epochs)  # the relaxed temperature at the end of training
        shared = [p for m in (model, guide.encoder) for p in m.parameters()]
        qc = list(guide.cluster_logits.parameters()) if strategy != "exact" else []
        if strategy == "score-function":  # fit the baseline at this point first
            baseline = list(guide.strategy_modules.parameters())
            opt = torch.optim.Adam(baseline, lr=1e-2)
            for _ in range(args.baseline_steps):
                loss = loss_fn.differentiable_loss(train_model, train_guide, x)
                opt.zero_grad()
                loss.backward()
                opt.step()
        draws_shared, draws_qc = [], []
        for _ in range(args.grad_draws):
            for p in shared + qc:
                p.grad = None
            loss_fn.differentiable_loss(train_model, train_guide, x).backward()
            draws_shared.append(flat_grads(shared))
            if qc:
                draws_qc.append(flat_grads(qc))
        ds = torch.stack(draws_shared)
        row = {"table": "Cluster inference: gradient variance at a fixed point", "model": name,
               "strategy": strategy, "var_shared": float(ds.var(0).sum()),
               "mean_sq_shared": float(ds.mean(0).pow(2).sum())}
        if draws_qc:
            dq = torch.stack(draws_qc)
            row.update(var_qc=float(dq.var(0).sum()), mean_sq_qc=float(dq.mean(0).pow(2).sum()))
        rows.append(row)
    return rows


def summarise(values):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return None
    return f"{np.mean(values):.3f} ± {np.std(values):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--dataset", choices=["digits", "mnist"], default="digits")
    parser.add_argument("--data-dir", help="the MNIST IDX files (with --dataset mnist)")
    parser.add_argument("--num-datapoints", type=int, default=10000,
                        help="MNIST images used (a seed-0 subset of the training split)")
    parser.add_argument("--models", nargs="+", default=["vade", "gmvae"])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--pretrain-epochs", type=int, default=20)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--network", default="small")
    parser.add_argument("--latent-dim", type=int, default=10)
    parser.add_argument("--temperature-decay", type=float, default=0.2)
    parser.add_argument("--num-samples", type=int, default=100)
    parser.add_argument("--min-run-time", type=float, default=1.0)
    parser.add_argument("--grad-draws", type=int, default=100)
    parser.add_argument("--baseline-steps", type=int, default=200)
    parser.add_argument("--out", help="default: benchmarks/results/cluster-inference[-mnist].json")
    parser.add_argument("--grad-out", default="benchmarks/results/cluster-inference-gradients.json")
    parser.add_argument("--timing-only", action="store_true",
                        help="only measure the step ratios again and write them into --out's rows")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")
    if args.dataset == "digits":
        data, where = load_dataset("digits"), "the digits"
    else:
        data = load_dataset("mnist", data_dir=args.data_dir, split="train", num_datapoints=args.num_datapoints)
        where = f"MNIST ({args.num_datapoints} training images, short)"
    args.data_dim = data.x.shape[1]
    suffix = "" if args.dataset == "digits" else f"-{args.dataset}"
    args.out = args.out or f"benchmarks/results/cluster-inference{suffix}.json"
    table = f"Cluster inference strategies on {where}"
    if args.timing_only:
        with open(args.out) as f:
            results = json.load(f)
        for name in args.models:
            ratios = step_ratios(name, data, args)
            print(name, ratios, flush=True)
            for row in results["rows"]:
                if row["model"] == name:
                    row["step_ratio"] = ratios[row["strategy"]]
        with open(args.out, "w") as f:
            json.dump(results, f, indent=1)
        return
    shared = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "torch": torch.__version__,
              "pyro": pyro.__version__, "threads": torch.get_num_threads(),
              "command": "python benchmarks/cluster_inference.py " + " ".join(argv if argv is not None
                                                                               else sys.argv[1:]),
              "settings": f"{where}, 80/20 split by seed, network {args.network}, latent {args.latent_dim}, "
                          f"{args.pretrain_epochs} pretraining epochs + GMM start shared by the strategies, "
                          f"{args.epochs} epochs at lr {args.lr:g}, batch 100, tau 1 -> 0.5 at decay "
                          f"{args.temperature_decay:g}/epoch, {args.num_samples} importance samples"}
    per_run, grad_rows = [], []
    for name in args.models:
        for seed in args.seeds:
            train, test = split(data, seed)
            state = start(name, seed, train, args)
            times = {}
            for strategy in STRATEGIES:
                trainer, result = run(name, strategy, seed, state, train, test, args)
                times[strategy] = step_time(trainer, train.x[:100], args)
                per_run.append({"model": name, "strategy": strategy, "seed": seed, **result,
                                "step_seconds": times[strategy]})
                print(json.dumps(per_run[-1]), flush=True)
                if strategy == "amortized" and seed == args.seeds[0] and name == "vade":
                    amortized_state = (trainer.model.state_dict(), trainer.guide.state_dict())
            for row in per_run[-len(STRATEGIES):]:
                row["step_ratio_after_training"] = row["step_seconds"] / times["exact"]
        if name == "vade" and args.dataset == "digits":
            grad_rows = gradient_variance(name, amortized_state[1], amortized_state[0], split(data, 0)[0].x[:100],
                                          args)
            for row in grad_rows:
                print(json.dumps(row), flush=True)
    rows = []
    for name in args.models:
        for strategy in STRATEGIES:
            runs = [r for r in per_run if r["model"] == name and r["strategy"] == strategy]
            rows.append({"table": table, **shared, "model": name,
                         "strategy": strategy, "seeds": len(runs),
                         **{key: summarise([r[key] for r in runs]) for key in
                            ("train_objective", "heldout_elbo", "heldout_ll", "khat_max", "acc", "nmi",
                             )}})
        ratios = step_ratios(name, data, args)
        for row in rows[-len(STRATEGIES):]:
            row["step_ratio"] = ratios[row["strategy"]]
    exact_var = {r["model"]: r["var_shared"] for r in grad_rows if r["strategy"] == "exact"}
    amortized_qc = {r["model"]: r.get("var_qc") for r in grad_rows if r["strategy"] == "amortized"}
    for row in grad_rows:
        row.update({k: v for k, v in shared.items() if k != "settings"})
        row["var_shared_vs_exact"] = row["var_shared"] / exact_var[row["model"]]
        if "var_qc" in row:
            row["var_qc_vs_amortized"] = row["var_qc"] / amortized_qc[row["model"]]
    notes = ("Mean ± std over seeds. train_objective is each strategy's own bound per datapoint (relaxed: the "
             "relaxed model's); heldout_elbo and heldout_ll (nats per datapoint) and acc/nmi are on the held-out "
             "fifth with the cluster summed out exactly, whatever trained the model; khat_max is the worst PSIS "
             "k-hat; step_ratio is one training step's median time over exact's (same process, batch and start; the "
             "median of 5 interleaved rounds; seed 0).")
    with open(args.out, "w") as f:
        json.dump({"rows": rows, "runs": per_run, "tables": {table: {
            "columns": ["model", "strategy", "seeds", "train_objective", "heldout_elbo", "heldout_ll", "khat_max",
                        "acc", "nmi", "step_ratio"], "notes": notes}}}, f, indent=1)
    grad_notes = ("VaDE at one point (the seed-0 amortized run's parameters; score-function's baseline fitted there "
                  "first), one minibatch of 100 digits: var_* is the sum over parameters of the per-element variance "
                  "of the gradient over the draws (shared: encoder, decoder, prior; qc: the q(c|x) head), mean_sq_* "
                  "the squared norm of the mean gradient; ratios against exact (shared) and amortized (q(c|x)).")
    if not grad_rows:
        return
    with open(args.grad_out, "w") as f:
        json.dump({"rows": grad_rows, "tables": {"Cluster inference: gradient variance at a fixed point": {
            "columns": ["model", "strategy", "var_shared", "var_shared_vs_exact", "mean_sq_shared", "var_qc",
                        "var_qc_vs_amortized", "mean_sq_qc"], "notes": grad_notes}}}, f, indent=1)


if __name__ == "__main__":
    main()
