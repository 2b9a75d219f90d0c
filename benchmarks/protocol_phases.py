"""Time the phases of the vade-mnist protocol in short pieces (issue 20, 'time'): a full protocol takes ~14 min on
one core, so each phase is timed on a few steps or one subset and scaled to the protocol's size. Prints one JSON
line per measurement (seconds of this process's CPU time unless --clock wall; UMAP gives both; pin the process
with taskset and give --threads).

    taskset -c 0 python benchmarks/protocol_phases.py --threads 1 --data-dir ../shared/data/mnist ae autocast
    taskset -c 0 python benchmarks/protocol_phases.py --threads 1 --data-dir ../shared/data/mnist umap svi

Phases: ``ae`` (an autoencoder step of pretraining at batch 256/512/1024 -> seconds per epoch of 70k), ``autocast``
(the same under bfloat16 autocast), ``umap`` (numba's first-call compile, then UMAP + GMM of 70k 10-d codes under
several settings; the codes are the PCA-10 of the pixels, a stand-in for the autoencoder's), ``svi`` (a warm-up
step and an SVI step at batch 100, and one evaluation of the 70k, as the protocol runs them), ``eval`` (that
evaluation with and without the decoder's forward). ``no seed, n_jobs=2`` needs two CPUs in the affinity.
"""

import argparse
import json
import sys
import time
import warnings

import numpy as np
import torch


def emit(**row):
    print(json.dumps(row), flush=True)


#: the clock: this process's CPU time by default (on a shared machine wall-clock time measures the neighbours;
#: with one thread CPU time is the step's cost), ``--clock wall`` on an idle one
CLOCK = {"process": time.process_time, "wall": time.perf_counter}
clock = time.process_time


def per_step(fn, steps, warmup=3):
    for _ in range(warmup):
        fn()
    t0 = clock()
    for _ in range(steps):
        fn()
    return (clock() - t0) / steps


def build_vade(n_features=784):
    from pyro_gmvae import ModelConfig, build

    torch.manual_seed(0)
    return build(ModelConfig(model="vade", data_dim=n_features, num_clusters=10, latent_dim=10, network="vade"))


def ae_step_fn(model, guide, x, batch_size):
    from pyro_gmvae.inference.pretrain import _likelihood_loss
    from pyro_gmvae.sites import LATENT

    params = list(guide.encoder.parameters()) + list(guide.heads[LATENT].parameters()) \
        + list(model.decoder.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    g = torch.Generator().manual_seed(0)

    def step():
        idx = torch.randint(0, x.shape[0], (batch_size,), generator=g)
        xb = x[idx]
        loss = _likelihood_loss(model, guide.site_dists(xb)[LATENT].mean, xb)
        opt.zero_grad()
        (loss / batch_size).backward()
        opt.step()
    return step


def phase_ae(x, args, autocast=False):
    from pyro_gmvae.nn import use_autocast

    for bs in args.batch_sizes:
        model, guide = build_vade()
        if autocast:
            use_autocast(model.decoder.net)
            use_autocast(guide.encoder)
        t = per_step(ae_step_fn(model, guide, x, bs), args.steps)
        emit(phase="ae_epoch" + ("_bf16" if autocast else ""), batch_size=bs, threads=torch.get_num_threads(),
             step_s=round(t, 5), epoch_s_70k=round(t * -(-70000 // bs), 1), steps_timed=args.steps)


def phase_umap(x, args):
    import umap
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    t0, c0 = time.perf_counter(), time.process_time()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, random_state=0).fit_transform(
            np.random.default_rng(0).normal(size=(300, 10)))
    emit(phase="umap_first_call_300_points (numba compile)", wall_s=round(time.perf_counter() - t0, 1),
         cpu_s=round(time.process_time() - c0, 1))
    codes = PCA(10, random_state=0).fit_transform(x.numpy().astype(np.float64))
    settings = {
        "protocol (random_state=seed)": dict(random_state=0),
        "n_epochs=100": dict(random_state=0, n_epochs=100),
        "low_memory=False": dict(random_state=0, low_memory=False),
        "no seed, n_jobs=2": dict(n_jobs=2),
    }
    for name in args.umap_settings or settings:
        kw = settings[name]
        t0, c0 = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            e = umap.UMAP(n_components=10, n_neighbors=20, min_dist=0.0, **kw).fit_transform(codes)
        t1, c1 = time.perf_counter(), time.process_time()
        GaussianMixture(10, covariance_type="full", n_init=5, random_state=0, reg_covar=1e-5).fit(e)
        emit(phase="umap+gmm 70k", setting=name, umap_wall_s=round(t1 - t0, 1), umap_cpu_s=round(c1 - c0, 1),
             gmm_wall_s=round(time.perf_counter() - t1, 1), gmm_cpu_s=round(time.process_time() - c1, 1))


def phase_svi(x, args):
    from pyro_gmvae import make_elbo
    from pyro_gmvae.evaluation.responsibilities import cluster_marginals
    from pyro_gmvae.inference.local_params import LocalParams
    from pyro_gmvae.inference.pretrain import warm_up_loss

    model, guide = build_vade()
    params = [p for m in (model, guide) for p in m.parameters()]
    labels = torch.randint(0, 10, (x.shape[0],), generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    with LocalParams():
        for name, jit in (("svi_step", False), ("svi_step_jit", True)):
            objective = make_elbo(jit=jit)(model, guide)
            opt = torch.optim.Adam(params, lr=1e-4)

            def svi():
                loss = objective(x[torch.randint(0, x.shape[0], (100,), generator=g)])
                loss.backward()
                opt.step()
                opt.zero_grad(set_to_none=True)
            t = per_step(svi, args.steps, warmup=5)
            emit(phase=name, batch_size=100, step_s=round(t, 5), epoch_s_70k=round(t * 700, 1),
                 threads=torch.get_num_threads())
        elbo = make_elbo()
        opt = torch.optim.Adam(params, lr=1e-3)

        def warm():
            idx = torch.randint(0, x.shape[0], (100,), generator=g)
            loss = warm_up_loss(model, guide, x[idx], labels[idx], elbo)
            opt.zero_grad()
            (loss / 100).backward()
            opt.step()
        t = per_step(warm, args.steps)
        emit(phase="warmup_step", batch_size=100, step_s=round(t, 5), epoch_s_70k=round(t * 700, 1),
             threads=torch.get_num_threads())
        t0 = clock()
        cluster_marginals(model, guide, x)
        emit(phase="evaluate 70k (cluster_marginals)", seconds=round(clock() - t0, 1),
             threads=torch.get_num_threads())


def phase_eval(x, args):
    """The per-epoch evaluation (responsibilities of all 70k at the guide's mean) as the library runs it, and
    with a model that stops before the decoder: x depends on the cluster only through z, which the guide's
    mean fixes, so p(x | z) is the same factor for every cluster and the decoder's forward is wasted."""
    import pyro

    from pyro_gmvae.evaluation.responsibilities import cluster_marginals
    from pyro_gmvae.inference.local_params import LocalParams
    from pyro_gmvae.sites import DATA_PLATE

    model, guide = build_vade()

    def prior_only(xb):
        with pyro.plate(DATA_PLATE, xb.shape[0]):
            return model.prior()
    prior_only.prior, prior_only.cluster_sites, prior_only.num_clusters = model.prior, model.cluster_sites, 10
    prior_only.decoder, prior_only.parameters = model.decoder, model.parameters  # for the input checks
    with LocalParams():
        results = {}
        for name, m in (("library", model), ("prior only", prior_only)):
            t0 = clock()
            try:
                results[name] = cluster_marginals(m, guide, x)
            except Exception as e:  # the library's checks may refuse a bare function
                emit(phase="evaluate 70k", variant=name, error=repr(e)[:200])
                continue
            emit(phase="evaluate 70k", variant=name, seconds=round(clock() - t0, 1), threads=torch.get_num_threads())
        if len(results) == 2:
            a, b = (next(iter(r.values())) for r in results.values())
            emit(phase="evaluate 70k", max_abs_diff_of_responsibilities=float((a - b).abs().max()))


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("phases", nargs="+", choices=["ae", "autocast", "umap", "svi", "eval"])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    p.add_argument("--batch-sizes", type=int, nargs="+", default=[256, 512, 1024])
    p.add_argument("--clock", choices=sorted(CLOCK), default="process",
                   help="process: CPU time of this process (default; with 2 threads it adds both threads' time)")
    p.add_argument("--umap-settings", nargs="*", help="names of the UMAP settings to time (default: all)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    global clock
    clock = CLOCK[args.clock]
    from pyro_gmvae import load_dataset

    x = load_dataset("mnist", data_dir=args.data_dir).x.float()
    emit(phase="data", n=int(x.shape[0]), threads=torch.get_num_threads(), clock=args.clock)
    for phase in args.phases:
        {"ae": phase_ae, "autocast": lambda x, a: phase_ae(x, a, autocast=True), "umap": phase_umap,
         "svi": phase_svi, "eval": phase_eval}[phase](x, args)


if __name__ == "__main__":
    sys.exit(main())
