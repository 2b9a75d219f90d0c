"""One VaDE SVI step (paper nets, batch 100, CPU) with the networks under bfloat16 autocast, against
float32, in one process: ratio of medians over interleaved rounds (torch.utils.benchmark).

    python benchmarks/autocast.py --out benchmarks/results/autocast.json
"""

import argparse
import json
import platform
import statistics
import sys
import time
import warnings

import pyro
import torch
from pyro.infer import SVI
from pyro.optim import Adam
from torch.utils import benchmark

from pyro_gmvae import ModelConfig, build, make_elbo
from pyro_gmvae.nn import use_autocast


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="benchmarks/results/autocast.json")
    args = p.parse_args(argv)
    warnings.simplefilter("ignore")
    torch.set_num_threads(args.threads)
    x = torch.rand(100, 784)
    steps = {}
    for name in ("float32", "bfloat16"):
        pyro.clear_param_store()
        model, guide = build(ModelConfig(model="vade", data_dim=784, num_clusters=10, latent_dim=10, network="vade"))
        if name == "bfloat16":
            use_autocast(model.decoder.net)
            use_autocast(guide.encoder)
        svi = SVI(model, guide, Adam({"lr": 1e-4}), make_elbo())
        steps[name] = svi.step
        svi.step(x)
    times = {name: [] for name in steps}
    for _ in range(args.rounds):
        for name, step in steps.items():
            timer = benchmark.Timer("step(x)", globals={"step": step, "x": x})
            times[name].append(timer.blocked_autorange(min_run_time=1.0).median)
    medians = {k: statistics.median(v) for k, v in times.items()}
    row = {"table": "Speed: bfloat16 autocast of the networks (CPU)",
           "name": "VaDE step, paper nets, batch 100: bfloat16 autocast / float32",
           "ratio": round(medians["bfloat16"] / medians["float32"], 3),
           "float32_ms": round(1000 * medians["float32"], 2), "bfloat16_ms": round(1000 * medians["bfloat16"], 2),
           "threads": args.threads, "rounds": args.rounds, "torch": torch.__version__, "pyro": pyro.__version__,
           "machine": f"{platform.machine()}, 2 CPU cores (avx512_bf16), no GPU", "date": time.strftime("%Y-%m-%d"),
           "command": "python benchmarks/autocast.py " + " ".join(argv)}
    table = {row["table"]: {"columns": ["name", "ratio", "float32_ms", "bfloat16_ms"]}}
    with open(args.out, "w") as f:
        json.dump({"rows": [row], "tables": table, "per_round_seconds": times}, f, indent=1)
    print(json.dumps(row, indent=1))


if __name__ == "__main__":
    main()
