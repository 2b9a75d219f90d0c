import sys, time, torch, pyro, numpy as np
sys.path.insert(0, "/work/main")
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run
from pyro_gmvae import load_dataset
from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.refined import refined_marginal_likelihood as rml
model, guide, *_ = load_run("/work/scratch/runs/bin/gmvae-s0")
x = binarize_static(load_dataset("mnist", data_dir="/work/shared/data/mnist", split="test").x)[:50]
base = dict(fit="laplace", widen_grid=(1.1,), num_newton_steps=3, num_adapt_rounds=2, num_adapt_samples=200)
for name, kw in [("default", {}), ("rounds4x500", dict(num_adapt_rounds=4, num_adapt_samples=500)),
                 ("df3", dict(df=3.0)), ("widen1.3", dict(widen_grid=(1.3,))), ("newton8", dict(num_newton_steps=8))]:
    pyro.set_rng_seed(0); t = time.perf_counter()
    r = rml(model, guide, x, 1000, batch_size=50, **{**base, **kw})
    print(name, "share", (r.khat > 0.7).mean(), "ll", round(float(r.log_likelihood.mean()), 3), "ess", round(float(r.ess.mean())), f"{time.perf_counter()-t:.0f}s", flush=True)
