import sys, time, math, torch, pyro, numpy as np
sys.path.insert(0, "/work/main")
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run
from pyro_gmvae import load_dataset
from pyro_gmvae.evaluation import refined as R
from pyro_gmvae.evaluation.latents import LatentSpace, log_joint
from pyro_gmvae.evaluation.marginal import pareto_khat, arviz_psislw
bad = [12, 24, 38, 39, 61, 67, 83, 87, 115, 124, 149, 184, 207, 268, 278, 300, 310, 320, 341, 391, 412, 444, 445]
rest = [i for i in range(500) if i not in bad][:77]
model, guide, *_ = load_run("/work/scratch/runs/vade-mnist-s7")
X = load_dataset("mnist", data_dir="/work/shared/data/mnist", split="test").x[:500]
S = int(sys.argv[1]) if len(sys.argv) > 1 else 2000

def psis_weights(lw):
    sm, _ = arviz_psislw(lw.double().numpy().T)
    sm = torch.as_tensor(np.asarray(sm)).T  # (S, N)
    return (sm - sm.logsumexp(0)).exp().to(lw.dtype)

def moment_match(model, x, space, loc, tril, rounds, pilot, df=5.0, widen=1.1):
    for _ in range(rounds):
        r = R.Proposal("student-t", loc, tril, space, x.new_full((x.shape[0],), widen), df)
        z = r.sample(pilot)
        lw = log_joint(model, x, space, z) - r.log_prob(z)
        w = psis_weights(lw)  # (S, N)
        mu = (w[..., None] * z).sum(0)
        d = z - mu
        cov = (w[..., None, None] * d[..., :, None] * d[..., None, :]).sum(0)
        old = tril @ tril.transpose(-1, -2)
        ess = 1 / (w ** 2).sum(0)
        a = (ess / (ess + 20))[:, None, None]   # shrink toward the previous covariance when the pilot is poor
        cov = a * cov + (1 - a) * old
        loc = a[:, :, 0] * mu + (1 - a[:, :, 0]) * loc
        tril = torch.linalg.cholesky(cov + 1e-6 * torch.eye(cov.shape[-1]))
    return loc, tril

def run(name, idx, newton, rounds, pilot, mix=False):
    x = X[idx]; pyro.set_rng_seed(0); t0 = time.perf_counter()
    with torch.no_grad():
        space = LatentSpace(guide, x)
        loc, tril = R.laplace(model, x, space, newton)
        if rounds:
            loc2, tril2 = moment_match(model, x, space, loc, tril, rounds, pilot)
        else:
            loc2, tril2 = loc, tril
        if mix:
            r = R.MixtureProposal("student-t", x.new_full((len(idx), 2), math.log(0.5)), torch.stack([loc, loc2], 1),
                                  torch.stack([tril, tril2], 1), x.new_full((len(idx),), 1.1))
        else:
            r = R.Proposal("student-t", loc2, tril2, space, x.new_full((len(idx),), 1.1))
        lw = torch.cat([log_joint(model, x, space, z) - r.log_prob(z) for z in (r.sample(500) for _ in range(S // 500))])
        k = pareto_khat(lw); ll = lw.logsumexp(0) - math.log(lw.shape[0])
    return k, ll, time.perf_counter() - t0

for cfg in [("laplace8", 8, 0, 0, False), ("l8+mm2x250", 8, 2, 250, False), ("l8+mm2x250 mix", 8, 2, 250, True),
            ("l3+mm2x250", 3, 2, 250, False), ("l3+mm3x200", 3, 3, 200, False)]:
    name = cfg[0]
    kb, llb, tb = run(name, bad, *cfg[1:])
    kr, llr, tr = run(name, rest, *cfg[1:])
    print(f"{name:16s} S={S} bad: {int((kb>0.7).sum())}/23 ll {float(llb.mean()):.3f} | rest: {int((kr>0.7).sum())}/77 ll {float(llr.mean()):.3f} | s/img {(tb+tr)/100:.3f}", flush=True)
