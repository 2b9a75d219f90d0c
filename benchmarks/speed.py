"""Speed of one SVI training step of pyro_gmvae against a hand-written PyTorch step of the same model.

Every comparison runs in one process, on the same module objects (the same networks, the same
parameters), with the variants interleaved: ``--rounds`` rounds, each timing every variant (in a shuffled
order) for one ``torch.utils.benchmark.Timer`` block of about ``--min-run-time`` seconds. A row's ``ratio``
is the ratio of the medians over the rounds; ``ratio_per_round_*`` summarise the ratios of the two
variants' blocks in the same round. The clock is this process's CPU time by default (``--clock``), with one
intra-op thread (``--threads``): the machine is shared, and wall-clock time there measures the neighbours.
Absolute times are recorded as context only.

Before anything is timed, each hand-written loss is checked against Pyro's ``TraceEnum_ELBO`` loss for
the same guide noise (same seed), and its gradients against Pyro's: the comparison is of the same
computation.

Variants of a step (all on the same ``model``/``guide``):

- ``pyro``: the library's step since issue 12: ``loss = make_elbo()(model, guide)(x)`` (Pyro's ``ELBOModule``),
  ``loss.backward()``, one ``torch.optim.Adam`` over all parameters.
- ``pyro_jit``: the same with ``make_elbo(jit=True)`` (``JitTraceEnum_ELBO``), warmed up before timing: the
  Trainer's default step for these built-in models since issue 20 (``TrainConfig(jit=None)`` traces where safe;
  ``default_step`` in a row says whether its numerator is the step the Trainer takes by default).
- ``pyro_svi`` / ``pyro_svi_jit`` (context): ``SVI(model, guide, pyro.optim.Adam({"lr": 2e-3}), make_elbo()).step(x)``,
  as the library trained before issue 12.
- ``hand``: the loss written with torch ops, ``loss.backward()``, one ``torch.optim.Adam`` over all parameters.
- diagnostics (``--diagnostics``, on by default), which split the Pyro overhead:
  ``pyro_elbo_torch_adam``: ``make_elbo().loss_and_grads(model, guide, x)`` (what ``SVI.step`` calls) and
  one ``torch.optim.Adam`` over all parameters (Pyro's ELBO without ``SVI``/``pyro.optim``);
  ``hand_per_param_adam``: the hand-written loss stepped by one ``torch.optim.Adam`` per parameter tensor
  (what ``pyro.optim`` does); ``pyro_novalidate``: ``pyro_svi`` with ``pyro.enable_validation(False)``.
- overhead diagnostics (tiny VaDE only, issue 20), each the library's step with one part of Pyro's work taken
  away, so that the differences split the overhead: ``pyro_lib_novalidate`` (Pyro's and torch's validation off);
  ``pyro_no_param_statements`` (``pyro.param``/``pyro.module``, which ``PyroModule`` runs on every access to a
  parameter or a plain ``nn.Module`` attribute, made no-ops for the step: what it costs to record the parameters
  in the traces; not valid under JIT, which finds the parameters through them); ``pyro_marginal``
  (``Trace_ELBO`` on the same model with the cluster summed out inside ``MixtureSameFamily``: no enumeration, no
  contraction; its loss is asserted equal to ``TraceEnum_ELBO``'s); ``pyro_marginal_bare`` (the three together).

Run ``python benchmarks/speed.py [--quick] [--out benchmarks/results/speed.json]``.
"""

import argparse
import datetime
import json
import math
import os
import platform
import random
import shlex
import statistics
import sys
import time

import pyro
import pyro.distributions as dist
import pyro.optim
import torch
import torch.nn.functional as F
import torch.utils.benchmark as benchmark
from pyro.infer import SVI, Trace_ELBO

from pyro_gmvae import ModelConfig, TrainConfig, build, make_elbo
from pyro_gmvae.inference.elbo import use_jit
from pyro_gmvae.models.priors import positive

LOG_2PI = math.log(2 * math.pi)
LR = 2e-3
TABLE = "Speed"

TARGETS = {  # row kind -> (target ratio, what is compared)
    "paper": 1.10,
    "tiny": 1.5,
    "tiny_jit": 1.3,
    "k_scaling": 1.2,
}

#: How benchmarks/render.py shows the rows (keys equal in every row go to the section's header).
COLUMNS = ["name", "ratio", "ratio_per_round_iqr", "target", "met", "default_step", "numerator_ms", "denominator_ms"]
NOTES = (
    "One training step (loss, backward, Adam update; the library's step is Pyro's ELBOModule + one torch Adam since issue 12) on a batch of 100 random images in [0, 1] (784 pixels, "
    "Bernoulli likelihood), latent_dim 10, float32, CPU. `ratio` = median of the numerator's step times / "
    "median of the denominator's, all variants interleaved in one process (shuffled order, every round); "
    "`ratio_per_round_iqr` is the spread of the ratio between rounds. Times in ms are context only: the "
    "machine is shared with other processes, which is why the clock is this process's CPU time (one "
    "intra-op thread) unless `clock` says wall. The hand-written losses are asserted equal to Pyro's "
    "(same noise) to 1e-4 relative, and their gradients to 1e-3, before anything is timed. "
    "Paper nets: VaDE's 784-500-500-2000-10 encoder and its mirror; tiny nets: 784-100-10 and 10-100-784.")


# ---------------------------------------------------------------------------------------------
# hand-written losses (the same model, the same modules, no Pyro machinery)
# ---------------------------------------------------------------------------------------------
def _normal_log_prob(x, loc, scale):
    return (-0.5 * ((x - loc) / scale) ** 2 - scale.log() - 0.5 * LOG_2PI).sum(-1)


def _rsample(d):
    """``loc + scale * eps`` drawing ``eps`` as torch's ``Normal.rsample`` does (same RNG stream)."""
    loc, scale = d.base_dist.loc, d.base_dist.scale
    eps = torch.empty(loc.shape, dtype=loc.dtype, device=loc.device).normal_()
    return loc + scale * eps, loc, scale


def _log_px(model, z, x):
    logits = model.decoder.net(z)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def hand_vade_loss(model, guide, x):
    """-sum_n [log p(x|z) + log sum_k pi_k N(z; loc_k, scale_k) - log q(z|x)], z ~ q(z|x)."""
    z, loc, scale = _rsample(guide.site_dists(x)["z"])
    prior = model.prior
    log_pi = torch.log_softmax(prior.logits, -1)
    pscale = positive(prior.scale_raw)
    log_pz = _normal_log_prob(z.unsqueeze(-2), prior.loc, pscale) + log_pi  # (B, K)
    elbo = _log_px(model, z, x) + torch.logsumexp(log_pz, -1) - _normal_log_prob(z, loc, scale)
    return -elbo.sum()


def hand_gmvae_loss(model, guide, x):
    """-sum_n [log p(x|z) + log sum_k (1/K) N(z; loc_k(w), scale_k(w)) + log p(w) - log q(z|x) - log q(w|x)]."""
    dists = guide.site_dists(x)
    w, wloc, wscale = _rsample(dists["w"])  # the guide samples w first, then z (prior.guide_sites order)
    z, loc, scale = _rsample(dists["z"])
    prior = model.prior
    cloc, cscale = prior.components(w)  # (B, K, D)
    log_pz = _normal_log_prob(z.unsqueeze(-2), cloc, cscale) - math.log(prior.num_clusters)
    log_pw = (-0.5 * w ** 2 - 0.5 * LOG_2PI).sum(-1)
    elbo = (_log_px(model, z, x) + torch.logsumexp(log_pz, -1) + log_pw
            - _normal_log_prob(z, loc, scale) - _normal_log_prob(w, wloc, wscale))
    return -elbo.sum()


HAND_LOSSES = {"vade": hand_vade_loss, "gmvae": hand_gmvae_loss}


# ---------------------------------------------------------------------------------------------
# one benchmark case: a model/guide, its data, and its step functions
# ---------------------------------------------------------------------------------------------
class Case:
    """A model/guide pair with its own Pyro param store state (so cases can be interleaved)."""

    def __init__(self, config, batch, seed=0):
        self.config = config
        self.batch = batch
        store = pyro.get_param_store()
        store.clear()
        torch.manual_seed(seed)
        self.model, self.guide = build(config)
        self.x = torch.rand(batch, config.data_dim)
        self.params = [p for m in (self.model, self.guide) for p in m.parameters()]
        self.hand_loss = HAND_LOSSES[config.model]
        self.state = store.get_state()
        self._steps = {}

    # -- param store swapping: PyroModule names are global, so each case keeps its own store ----
    def enter(self):
        store = pyro.get_param_store()
        store.clear()
        store.set_state(self.state)

    def leave(self):
        self.state = pyro.get_param_store().get_state()

    # -- correctness: the hand-written loss is the same computation as Pyro's ---------------------
    def check(self, jit=False, rtol=1e-4):
        self.enter()
        try:
            elbo = make_elbo(jit=jit)
            if jit:  # compile first: tracing runs the model and guide, which draws noise
                elbo.differentiable_loss(self.model, self.guide, self.x)
            pyro.set_rng_seed(123)
            pyro_loss = elbo.differentiable_loss(self.model, self.guide, self.x)
            pyro_grads = torch.autograd.grad(pyro_loss, self.params, allow_unused=True)
            pyro.set_rng_seed(123)
            hand = self.hand_loss(self.model, self.guide, self.x)
            hand_grads = torch.autograd.grad(hand, self.params, allow_unused=True)
        finally:
            self.leave()
        rel = abs(pyro_loss.item() - hand.item()) / abs(hand.item())
        assert rel <= rtol, f"{self.name()}: hand-written loss {hand.item()} != Pyro loss {pyro_loss.item()} " \
                            f"(relative difference {rel:.2e}, jit={jit})"
        worst = 0.0
        for g, e in zip(pyro_grads, hand_grads):
            if g is None and e is None:
                continue
            g = torch.zeros_like(e) if g is None else g
            e = torch.zeros_like(g) if e is None else e
            worst = max(worst, ((g - e).abs().max() / e.abs().max().clamp_min(1e-12)).item())
        assert worst <= 1e-3, f"{self.name()}: gradients differ (worst relative difference {worst:.2e}, jit={jit})"
        return rel, worst

    def name(self):
        c = self.config
        return f"{c.model}/{c.network}/K={c.num_clusters}"

    # -- step functions --------------------------------------------------------------------------
    def pyro_step(self, jit=False, validate=True):
        svi = SVI(self.model, self.guide, pyro.optim.Adam({"lr": LR}), make_elbo(jit=jit))
        x = self.x
        if validate:
            return lambda: svi.step(x)

        def step():
            with pyro.validation_enabled(False):
                return svi.step(x)
        return step

    def library_step(self, jit=False):
        """As the library's Trainer steps: Pyro's ``ELBOModule`` of ``TraceEnum_ELBO`` (or its JIT), the loss's
        ``backward()``, one ``torch.optim.Adam`` over all parameters."""
        loss_fn = make_elbo(jit=jit)(self.model, self.guide)
        optim = torch.optim.Adam(self.params, lr=LR)
        x = self.x

        def step():
            loss = loss_fn(x)
            loss.backward()
            optim.step()
            optim.zero_grad(set_to_none=True)
            return loss.item()
        return step

    def pyro_elbo_torch_adam_step(self):
        """``SVI.step`` without ``SVI``: the same ``loss_and_grads``, then one ``torch.optim.Adam`` over all
        parameters instead of ``pyro.optim``'s one optimizer per parameter tensor."""
        elbo = make_elbo()
        optim = torch.optim.Adam(self.params, lr=LR)
        model, guide, x = self.model, self.guide, self.x

        def step():
            loss = elbo.loss_and_grads(model, guide, x)
            optim.step()
            optim.zero_grad(set_to_none=True)
            return loss
        return step

    def marginal_model(self, x):
        """VaDE's model with the cluster summed out inside the z site's distribution (no enumerated site)."""
        prior, decoder = self.model.prior, self.model.decoder
        with pyro.plate("data", x.shape[0]):
            mixture = dist.MixtureSameFamily(dist.Categorical(logits=prior.logits),
                                             dist.Normal(prior.loc, positive(prior.scale_raw)).to_event(1))
            pyro.sample("x", decoder.x_dist(pyro.sample("z", mixture)), obs=x)

    def check_marginal(self, rtol=1e-5):
        """The marginal model's Trace_ELBO loss is TraceEnum_ELBO's for the same noise."""
        self.enter()
        try:
            pyro.set_rng_seed(321)
            enum = make_elbo().differentiable_loss(self.model, self.guide, self.x).item()
            pyro.set_rng_seed(321)
            marginal = Trace_ELBO(max_plate_nesting=1).differentiable_loss(self.marginal_model, self.guide,
                                                                           self.x).item()
        finally:
            self.leave()
        rel = abs(enum - marginal) / abs(enum)
        assert rel <= rtol, f"{self.name()}: marginal loss {marginal} != enumerated loss {enum} ({rel:.1e})"
        return rel

    def overhead_step(self, validate=True, param_statements=True, marginal=False):
        """The library's step with parts of Pyro's work taken away (diagnostics only; see the module doc)."""
        loss_fn = (Trace_ELBO(max_plate_nesting=1)(self.marginal_model, self.guide) if marginal
                   else make_elbo()(self.model, self.guide))
        optim = torch.optim.Adam(self.params, lr=LR)
        x = self.x

        def step():
            saved = pyro.param, pyro.module
            if not param_statements:  # PyroModule.__getattr__ calls them through the pyro namespace
                pyro.param = lambda name, init_tensor=None, *args, **kwargs: init_tensor
                pyro.module = lambda name, nn_module, *args, **kwargs: nn_module
            try:
                with pyro.validation_enabled(validate):
                    loss = loss_fn(x)
                    loss.backward()
            finally:
                pyro.param, pyro.module = saved
            optim.step()
            optim.zero_grad(set_to_none=True)
            return loss.item()
        return step

    def hand_step(self, per_param_adam=False):
        if per_param_adam:
            optims = [torch.optim.Adam([p], lr=LR) for p in self.params]
        else:
            optims = [torch.optim.Adam(self.params, lr=LR)]  # zero_grad: set_to_none, torch's default
        loss_fn, model, guide, x = self.hand_loss, self.model, self.guide, self.x

        def step():
            for o in optims:
                o.zero_grad(set_to_none=True)
            loss = loss_fn(model, guide, x)
            loss.backward()
            for o in optims:
                o.step()
            return loss.item()
        return step


CLOCKS = {
    # CPU time of this process: a step that is descheduled by another process's work is not charged
    # for the wait. With one intra-op thread, CPU-only autograd runs on the calling thread too.
    "process": time.process_time,
    "wall": time.perf_counter,
}


def measure(blocks, rounds, min_run_time, threads, clock="process", seed=0):
    """``blocks``: list of ``(key, case, fn, number)``. Times every block (``number`` calls of ``fn``, about
    ``min_run_time`` seconds) once per round, in a shuffled order, ``rounds`` times: short blocks and many
    rounds, so that every variant sees the same load on a shared machine. Returns ``{key: [per-round time
    per call]}``."""
    rng = random.Random(seed)
    per_round = {key: [] for key, _, _, _ in blocks}
    for r in range(rounds):
        order = list(blocks)
        rng.shuffle(order)  # no variant always runs right after the same neighbour
        for key, case, fn, number in order:
            case.enter()
            try:
                m = benchmark.Timer(stmt="fn()", globals={"fn": fn}, num_threads=threads, timer=CLOCKS[clock],
                                    label=key).timeit(number)
            finally:
                case.leave()
            per_round[key].append(m.median)
        if (r + 1) % max(1, rounds // 5) == 0 or r + 1 == rounds:
            print(f"  round {r + 1}/{rounds}: " + ", ".join(
                f"{k}={statistics.median(v) * 1e3:.2f}ms" for k, v in per_round.items()), file=sys.stderr, flush=True)
    return per_round


def warm(case, fn, n, min_run_time, clock="process"):
    """Run ``fn`` ``n`` times (JIT compilation, allocator, Adam state), then return how many calls make
    a block of about ``min_run_time`` seconds."""
    case.enter()
    try:
        for _ in range(n):
            fn()
        t0 = CLOCKS[clock]()
        fn()
        fn()
        per_call = (CLOCKS[clock]() - t0) / 2
    finally:
        case.leave()
    return max(1, round(min_run_time / max(per_call, 1e-6)))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer rounds, shorter blocks (a smoke run)")
    parser.add_argument("--out", default="benchmarks/results/speed.json")
    parser.add_argument("--rounds", type=int, default=None, help="interleaved rounds (default 60, quick 4)")
    parser.add_argument("--min-run-time", type=float, default=None,
                        help="seconds per timed block (default 0.15, quick 0.05)")
    parser.add_argument("--no-diagnostics", action="store_true", help="skip the diagnostic variants")
    parser.add_argument("--threads", type=int, default=1,
                        help="intra-op threads while timing (default 1: on a shared 2-core machine, "
                             "two threads make every parallel op wait for the slower, descheduled one)")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="process",
                        help="process: CPU time of this process (default; robust on a shared machine); "
                             "wall: wall-clock time")
    parser.add_argument("--no-gmvae", action="store_true", help="skip the GMVAE rows")
    args = parser.parse_args(argv)
    rounds = args.rounds or (4 if args.quick else 60)
    min_run_time = args.min_run_time or (0.05 if args.quick else 0.15)
    command = "python " + " ".join(shlex.quote(a) for a in [os.path.relpath(__file__)] + sys.argv[1:]) \
        if argv is None else "python benchmarks/speed.py " + " ".join(argv)
    torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()
    batch = 100
    torch.set_default_dtype(torch.float32)
    diagnostics = not args.no_diagnostics

    def config(model="vade", network="vade", k=10, **kw):
        return ModelConfig(model=model, data_dim=784, num_clusters=k, latent_dim=10, network=network, **kw)

    cases = {
        "paper": Case(config(), batch),
        "tiny": Case(config(network="toy"), batch),
        "paper_k30": Case(config(k=30), batch),
        "paper_k100": Case(config(k=100), batch),
    }
    if not args.no_gmvae:
        cases["gmvae_paper"] = Case(config(model="gmvae"), batch)
        cases["gmvae_tiny"] = Case(config(model="gmvae", network="toy"), batch)

    checks = {}
    for key, case in cases.items():
        checks[key] = case.check()
        if key in ("paper", "tiny"):
            checks[key + "_jit"] = case.check(jit=True)
        if key == "tiny" and diagnostics:
            checks["tiny_marginal"] = (case.check_marginal(), 0.0)
        print(f"check {key}: loss rel diff {checks[key][0]:.1e}, grad rel diff {checks[key][1]:.1e}",
              file=sys.stderr)

    blocks = []
    for key, case in cases.items():
        fns = {"pyro": case.library_step(), "hand": case.hand_step()}
        if key in ("paper", "tiny", "gmvae_paper", "gmvae_tiny"):
            fns["pyro_jit"] = case.library_step(jit=True)
        if key in ("paper", "tiny"):
            fns["pyro_svi"] = case.pyro_step()
            fns["pyro_svi_jit"] = case.pyro_step(jit=True)
        if diagnostics and key in ("paper", "tiny"):
            fns["pyro_elbo_torch_adam"] = case.pyro_elbo_torch_adam_step()
            fns["hand_per_param_adam"] = case.hand_step(per_param_adam=True)
            fns["pyro_novalidate"] = case.pyro_step(validate=False)
        if diagnostics and key == "tiny":
            fns["pyro_lib_novalidate"] = case.overhead_step(validate=False)
            fns["pyro_no_param_statements"] = case.overhead_step(param_statements=False)
            fns["pyro_marginal"] = case.overhead_step(marginal=True)
            fns["pyro_marginal_bare"] = case.overhead_step(validate=False, param_statements=False, marginal=True)
        for variant, fn in fns.items():
            number = warm(case, fn, 5 if variant.endswith("jit") else 2, min_run_time, args.clock)  # jit: compile
            blocks.append((f"{key}:{variant}", case, fn, number))

    per_round = measure(blocks, rounds, min_run_time, threads, args.clock)
    times = per_round
    med = {k: statistics.median(v) for k, v in per_round.items()}

    now = datetime.datetime.now().astimezone()
    common = {"table": TABLE, "torch": torch.__version__, "pyro": pyro.__version__, "threads": threads,
              "batch": batch, "dtype": "float32", "device": "cpu", "python": platform.python_version(),
              "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores visible, no GPU",
              "date": now.strftime("%Y-%m-%d"), "command": command, "rounds": rounds,
              "min_run_time_s": min_run_time, "clock": args.clock,
              "unit": f"ms of {'process CPU' if args.clock == 'process' else 'wall-clock'} time "
                      "(median per step; context only)"}
    rows = []

    def row(name, num, den, kind=None, **extra):
        case = cases[num.split(":")[0]]
        r = dict(common)
        target = TARGETS.get(kind)
        round_ratios = sorted(a / b for a, b in zip(per_round[num], per_round[den]))
        q1, q2, q3 = statistics.quantiles(round_ratios, n=4) if len(round_ratios) > 1 else round_ratios * 3
        r.update({
            "name": name, "ratio": round(med[num] / med[den], 4),
            "ratio_per_round_median": round(q2, 4), "ratio_per_round_iqr": [round(q1, 4), round(q3, 4)],
            "numerator": num, "denominator": den,
            "numerator_ms": round(med[num] * 1e3, 3), "denominator_ms": round(med[den] * 1e3, 3),
            "blocks": len(times[num]),
            "model": case.config.model, "K": case.config.num_clusters, "network": case.config.network,
            "target": target, "met": None if target is None else med[num] / med[den] <= target,
        })
        variant = num.split(":")[1]
        if variant in ("pyro", "pyro_jit"):  # is this the step the Trainer takes by default (TrainConfig(jit=None))?
            r["default_step"] = use_jit(TrainConfig(), case.model, case.guide) == (variant == "pyro_jit")
        r.update(extra)
        rows.append(r)

    row("VaDE step, paper nets: Pyro ELBOModule + torch Adam / hand-written", "paper:pyro", "paper:hand", "paper")
    row("VaDE step, paper nets: Pyro ELBOModule JIT + torch Adam / hand-written", "paper:pyro_jit", "paper:hand",
        "paper")
    row("VaDE step, tiny nets: Pyro ELBOModule + torch Adam / hand-written", "tiny:pyro", "tiny:hand", "tiny")
    row("VaDE step, tiny nets: Pyro ELBOModule JIT + torch Adam / hand-written", "tiny:pyro_jit", "tiny:hand",
        "tiny_jit")
    row("(context) VaDE step, paper nets: Pyro SVI + pyro.optim (before issue 12) / hand-written", "paper:pyro_svi",
        "paper:hand")
    row("(context) VaDE step, tiny nets: Pyro SVI + pyro.optim JIT (before issue 12) / hand-written",
        "tiny:pyro_svi_jit", "tiny:hand")
    row("VaDE Pyro step, paper nets: K=30 / K=10", "paper_k30:pyro", "paper:pyro")
    row("VaDE Pyro step, paper nets: K=100 / K=10", "paper_k100:pyro", "paper:pyro", "k_scaling")
    row("(context) VaDE hand-written step, paper nets: K=100 / K=10", "paper_k100:hand", "paper:hand")
    row("(context) VaDE step, paper nets, K=100: Pyro step / hand-written", "paper_k100:pyro", "paper_k100:hand")
    if not args.no_gmvae:
        row("GMVAE step, paper nets: Pyro ELBOModule / hand-written", "gmvae_paper:pyro", "gmvae_paper:hand")
        row("GMVAE step, paper nets: Pyro ELBOModule JIT / hand-written", "gmvae_paper:pyro_jit", "gmvae_paper:hand")
        row("GMVAE step, tiny nets: Pyro ELBOModule / hand-written", "gmvae_tiny:pyro", "gmvae_tiny:hand")
        row("GMVAE step, tiny nets: Pyro ELBOModule JIT / hand-written", "gmvae_tiny:pyro_jit", "gmvae_tiny:hand")
    if diagnostics:
        for key, label in (("paper", "paper"), ("tiny", "tiny")):
            row(f"(diagnostic) {label} nets: Pyro ELBO + one torch Adam / hand-written",
                f"{key}:pyro_elbo_torch_adam", f"{key}:hand")
            row(f"(diagnostic) {label} nets: Pyro SVI / Pyro ELBO + one torch Adam (SVI + pyro.optim cost)",
                f"{key}:pyro_svi", f"{key}:pyro_elbo_torch_adam")
            row(f"(diagnostic) {label} nets: hand-written, one Adam per tensor / one Adam",
                f"{key}:hand_per_param_adam", f"{key}:hand")
            row(f"(diagnostic) {label} nets: Pyro SVI, validation off / hand-written",
                f"{key}:pyro_novalidate", f"{key}:hand")

    if diagnostics:
        for variant, label in (("pyro_lib_novalidate", "validation off"),
                               ("pyro_no_param_statements", "no pyro.param/pyro.module statements"),
                               ("pyro_marginal", "Trace_ELBO, cluster summed in MixtureSameFamily (no enumeration)"),
                               ("pyro_marginal_bare", "all three")):
            row(f"(overhead) tiny nets: Pyro ELBOModule step, {label} / hand-written", f"tiny:{variant}", "tiny:hand")

    for r in rows:
        status = "" if r["target"] is None else f"  target <= {r['target']}: {'met' if r['met'] else 'MISSED'}"
        print(f"{r['ratio']:7.3f}  {r['name']}  ({r['numerator_ms']:.2f} / {r['denominator_ms']:.2f} ms){status}")

    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    payload = {"table": TABLE, "generated": now.isoformat(timespec="seconds"),
               "tables": {TABLE: {"columns": COLUMNS, "notes": NOTES}},
               "checks": {k: {"loss_rel_diff": v[0], "grad_rel_diff": v[1]} for k, v in checks.items()},
               "rows": rows}
    with open(args.out, "w") as f:
        json.dump(payload, f, indent=1)
    print(f"wrote {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
