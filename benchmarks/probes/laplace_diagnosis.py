import sys, torch, pyro, numpy as np
sys.path.insert(0, "/work/main")
torch.set_num_threads(1)
from pyro_gmvae.runs import load_run
from pyro_gmvae import load_dataset
from pyro_gmvae.evaluation import refined as R
from pyro_gmvae.evaluation.latents import LatentSpace, log_joint
from pyro_gmvae.evaluation.marginal import pareto_khat
model, guide, *_ = load_run("/work/scratch/runs/vade-mnist-s7")
x = load_dataset("mnist", data_dir="/work/shared/data/mnist", split="test").x[:500][[412, 445, 12, 124]]
pyro.set_rng_seed(0)
with torch.no_grad():
    space = LatentSpace(guide, x)
    loc, tril = R.laplace(model, x, space, 20)
    _, g, H = R._grad_and_hessian(model, x, space, loc)
    print("grad norm at mode (whitened)", (g*space.scale).norm(dim=-1))
    print("eig -H whitened", torch.linalg.eigvalsh(-H*space.scale[:,:,None]*space.scale[:,None,:]).round(decimals=2))
    r = R.Proposal("normal", loc, tril, space, x.new_full((4,), 1.0))
    z = r.sample(5000)
    lw = log_joint(model, x, space, z) - r.log_prob(z)
    print("khat", pareto_khat(lw))
    # Mahalanobis distance of samples, and for the top-10 weights
    Linv = torch.linalg.inv(tril)
    m = ((Linv[None] @ (z - loc)[..., None])[..., 0]).norm(dim=-1)
    for i in range(4):
        top = lw[:, i].topk(10).indices
        print(i, "lw mean %.2f max %.2f" % (lw[:, i].mean(), lw[:, i].max()), "maha all median %.2f" % m[:, i].median(),
              "top maha", m[top, i].round(decimals=2).tolist())
        # direction of top samples in eigen-coords
        d = (Linv[i] @ (z[top, i] - loc[i]).T).T
        print("   top whitened coords mean", d.mean(0).round(decimals=2).tolist())
    # 1-d slice: log p along the direction of top sample for image 0
    i = 0; top = lw[:, i].argmax(); d = z[top, i] - loc[i]
    ts = torch.linspace(-2, 2, 21)
    pts = loc[i] + ts[:, None] * d
    lp = log_joint(model, x[i:i+1].expand(21, -1), LatentSpace(guide, x[i:i+1].expand(21, -1)), pts[None])[0]
    lq = -0.5 * (((Linv[i] @ (pts - loc[i]).T).T) ** 2).sum(-1)
    print("slice log p - log p(mode):", (lp - lp[10]).round(decimals=1).tolist())
    print("slice gaussian          :", lq.round(decimals=1).tolist())
