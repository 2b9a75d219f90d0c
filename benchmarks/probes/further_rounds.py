import sys, time, torch, pyro, numpy as np
sys.path.insert(0, "/work/main")
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run
from pyro_gmvae import load_dataset
from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.refined import refined_marginal_likelihood as rml
base = dict(fit="laplace", widen_grid=(1.1,), num_newton_steps=3, num_adapt_rounds=2, num_adapt_samples=200)
for run, binar in (("/work/scratch/runs/bin/gmvae-s0", True), ("/work/scratch/runs/vade-mnist-s7", False)):
    model, guide, *_ = load_run(run)
    x = load_dataset("mnist", data_dir="/work/shared/data/mnist", split="test").x
    x = (binarize_static(x) if binar else x)[:100]
    for name, kw in [("max8x500", dict(max_adapt_rounds=8, num_adapt_samples=500)), ("max8x250", dict(max_adapt_rounds=8, num_adapt_samples=250))]:
        pyro.set_rng_seed(0); t = time.perf_counter()
        r = rml(model, guide, x, 1000, batch_size=100, **{**base, **kw})
        print(run.split("/")[-1], name, "share", (r.khat > 0.7).mean(), "ll", round(float(r.log_likelihood.mean()), 3), "ess", round(float(r.ess.mean())), f"{time.perf_counter()-t:.0f}s", flush=True)
