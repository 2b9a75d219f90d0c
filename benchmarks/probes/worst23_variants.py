import sys, time, math, torch, pyro, numpy as np
sys.path.insert(0, "/work/main")
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run
from pyro_gmvae import load_dataset
from pyro_gmvae.evaluation.refined import refined_marginal_likelihood as rml
idx = [12, 24, 38, 39, 61, 67, 83, 87, 115, 124, 149, 184, 207, 268, 278, 300, 310, 320, 341, 391, 412, 444, 445]
model, guide, *_ = load_run("/work/scratch/runs/vade-mnist-s7")
x = load_dataset("mnist", data_dir="/work/shared/data/mnist", split="test").x[:500][idx]
variants = {
  "laplace8": dict(fit="laplace", num_newton_steps=8),
  "laplace20": dict(fit="laplace", num_newton_steps=20),
  "mix3": dict(fit="laplace-mixture", num_newton_steps=8, num_components=3),
  "mix10": dict(fit="laplace-mixture", num_newton_steps=8, num_components=10),
  "defensive": dict(fit="laplace", num_newton_steps=8, proposal="defensive"),
  "normal": dict(fit="laplace", num_newton_steps=8, proposal="normal"),
}
for name, kw in variants.items():
    pyro.set_rng_seed(0); s = time.perf_counter()
    r = rml(model, guide, x, 5000, widen_grid=(1.1,), batch_size=23, **kw)
    print(name, "bad", int((r.khat > 0.7).sum()), "/", len(idx), "ll", round(float(r.log_likelihood.mean()), 3),
          "khat", np.round(r.khat, 2).tolist(), f"{time.perf_counter()-s:.0f}s", flush=True)
