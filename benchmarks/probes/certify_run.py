"""Probe (issue 31): is-guide, is and ais on the first 50 test images of one likelihood-grade run (paths fixed: edit run)."""
import json, time, torch, pyro
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run, load_run_data, read_metrics
from pyro_gmvae.data.binarize import binarize_static
from pyro_gmvae.evaluation.estimators import estimate_log_likelihood
run = "/work/main/runs/bench/vae-bmnist"
model, guide, *_ = load_run(run)
epoch = read_metrics(run)[-1]["epoch"]
x = binarize_static(load_run_data(run, "test").x[:50])
rows = {"epoch": epoch, "images": "first 50 test images (static binary)"}
for name, opts in [("is-guide", dict(num_samples=1000)), ("is", dict(num_samples=1000)), ("ais", dict(num_steps=500, num_chains=8))]:
    pyro.set_rng_seed(0); t = time.time()
    with torch.no_grad():
        r = estimate_log_likelihood(model, guide, x, name, **opts)
    s = r.summary(); rows[name] = {k: s.get(k) for k in ("log_likelihood", "khat_share_above_0_7", "log_likelihood_mc_stderr", "acceptance")}
    rows[name]["seconds"] = time.time() - t; rows[name]["per_image"] = r.log_likelihood.tolist()
    print(name, rows[name]["log_likelihood"], rows[name]["khat_share_above_0_7"], round(rows[name]["seconds"]), flush=True)
import numpy as np
ais = np.array(rows["ais"]["per_image"])
for n in ("is", "is-guide"):
    rows[f"mean_abs_{n}_minus_ais"] = float(np.abs(np.array(rows[n]["per_image"]) - ais).mean())
print({k: v for k, v in rows.items() if k.startswith("mean_abs")})
json.dump(rows, open("/work/bench/cert-vae-bmnist.json", "w"), indent=1)
