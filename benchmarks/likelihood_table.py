"""The test log-likelihood table on binarized MNIST (issue 19) from ``benchmarks/likelihood.py`` outputs.

    python benchmarks/likelihood_table.py OUT_DIR   # OUT_DIR/bin-MODEL-sSEED-{is,is5000,ais,bdmc}.json

Each run was trained with ``pyro-gmvae train --preset vade-mnist-diagonal --binarize dynamic --split train --model MODEL
--seed SEED`` (GMVAE: ``--preset gmvae-mnist --num-clusters 10``) and scored by ``benchmarks/likelihood.py``
(``-is``, ``-is5000``: the reliable IS, S = 1000 and 5000, on the first images of the static binary test split
(``--refined-samples``); ``-ais``: AIS beside the IS on
fewer; ``-bdmc``: both AIS bounds on images simulated from the model). Writes
``benchmarks/results/likelihood-binarized-mnist.json``: one row per model and estimator, the mean over seeds
with the standard deviation across them, and the published references with their protocols.
"""

import json
import re
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
TABLE = "Test log-likelihood on binarized MNIST (issue 19)"
IS_KINDS = ("is", "is5000")  # the per-run files' suffixes: S = 1000, S = 5000
MODELS = {"vae": "VAE (standard normal prior)", "vade": "VaDE (mixture prior, K = 10)",
          "gmvae": "GMVAE (K = 10, free bits 0.5)", "hier": "hierarchical (super-clusters over clusters)"}
COMMANDS = {"vae": "--preset vade-mnist-diagonal --model vae", "vade": "--preset vade-mnist-diagonal",
            "gmvae": "--preset gmvae-mnist --num-clusters 10", "hier": "--preset vade-mnist-diagonal --model hierarchical"}
#: Published numbers on binarized MNIST, with their protocols (not measured here).
REFERENCES = [
    {"model": "VAE, 1 stochastic layer (50-d), 2x200 hidden (Burda et al. 2016, IWAE paper, Table 1)",
     "estimator": "IS with the guide, k = 5000", "num_samples": 5000, "log_likelihood": -86.76,
     "note": "published; dynamic binarization in training, 3280 passes"},
    {"model": "IWAE k = 50, same networks (Burda et al. 2016)", "estimator": "IS with the guide, k = 5000",
     "num_samples": 5000, "log_likelihood": -84.78, "note": "published"},
    {"model": "VAE (pythae reproduction)", "estimator": "IS with the guide", "num_samples": 200,
     "log_likelihood": -89.8, "note": "published by pythae (Chadebec et al. 2022), binary MNIST"},
    {"model": "VampPrior VAE (pythae reproduction)", "estimator": "IS with the guide", "num_samples": 5000,
     "log_likelihood": -85.8, "note": "published by pythae, binary MNIST"},
]


def read(path):
    return json.loads(Path(path).read_text()) if Path(path).exists() else None


def collect(out_dir):
    runs = {}
    for path in sorted(Path(out_dir).glob("bin-*-s*-*.json")):
        m = re.fullmatch(r"bin-(\w+)-s(\d+)-(is|is5000|ais|bdmc)\.json", path.name)
        if m:
            runs.setdefault(m.group(1), {}).setdefault(int(m.group(2)), {})[m.group(3)] = read(path)
    return runs


def _is_on_ais_images(seeds, with_ais):
    """The IS estimate's mean over the (fewer) images AIS scored, seeds averaged: the number to set beside AIS's."""
    means = []
    for s in with_ais:
        n = len(seeds[s]["ais"]["per_image"]["ais"])
        is_run = seeds[s].get("is")
        if is_run is None or len(is_run["per_image"]["refined"]) < n:
            return None
        means.append(float(np.mean(is_run["per_image"]["refined"][:n])))
    return round(float(np.mean(means)), 2)


def _is_minus_ais(seeds, with_ais):
    """Mean |IS - AIS| per image over the images both scored (the first of the IS run's), all seeds pooled."""
    diffs = []
    for s in with_ais:
        ais = np.asarray(seeds[s]["ais"]["per_image"]["ais"])
        is_run = seeds[s].get("is")
        if is_run is None or len(is_run["per_image"]["refined"]) < len(ais):
            return None
        diffs.append(np.abs(np.asarray(is_run["per_image"]["refined"][:len(ais)]) - ais))
    return round(float(np.concatenate(diffs).mean()), 3)


def mean_sd(values):
    values = np.asarray(values, dtype=float)
    return round(float(values.mean()), 2), (round(float(values.std(ddof=1)), 2) if len(values) > 1 else None)


def rows_for(name, seeds):
    rows, shared = [], {"table": TABLE, "dataset": "binarized MNIST (static draw of the test split)",
                        "model": MODELS[name], "train": f"pyro-gmvae train {COMMANDS[name]} --binarize dynamic "
                                                           "--split train --seed S"}
    for kind in IS_KINDS:  # the reliable IS at S = 1000 and at S = 5000
        with_is = sorted(s for s, r in seeds.items() if r.get(kind))
        if not with_is:
            continue
        est = [seeds[s][kind]["estimators"]["refined"] for s in with_is]
        ll, sd = mean_sd([e["log_likelihood"] for e in est])
        rows.append(dict(shared, estimator="is (Laplace + moment matching, Student-t)",
                         num_samples=est[0]["num_samples"],
                         images=seeds[with_is[0]][kind]["images"], log_likelihood=ll, log_likelihood_sd=sd,
                         khat_share_above_0_7=round(float(np.mean([e["khat_share_above_0_7"] for e in est])), 3),
                         bdmc_gap=None, seeds=with_is))
    with_ais = sorted(s for s, r in seeds.items() if r.get("ais"))
    if with_ais:
        runs = [seeds[s]["ais"]["estimators"]["ais"] for s in with_ais]
        ll, sd = mean_sd([r["log_likelihood"] for r in runs])
        rows.append(dict(shared, estimator=f"ais ({runs[0]['num_steps']} steps x {runs[0]['num_chains']} chains, HMC)",
                         num_samples=runs[0]["num_chains"], images=seeds[with_ais[0]]["ais"]["images"],
                         log_likelihood=ll, log_likelihood_sd=sd, khat_share_above_0_7=None, bdmc_gap=None,
                         seeds=with_ais, is_on_these_images=_is_on_ais_images(seeds, with_ais),
                         mean_abs_is_minus_ais=_is_minus_ais(seeds, with_ais)))
    with_bdmc = sorted(s for s, r in seeds.items() if r.get("bdmc"))
    if with_bdmc:
        runs = [seeds[s]["bdmc"]["estimators"]["bdmc"] for s in with_bdmc]
        rows.append(dict(shared, estimator=f"bdmc ({runs[0]['num_steps']} steps x {runs[0]['num_chains']} chains)",
                         num_samples=runs[0]["num_chains"],
                         images=f"{runs[0]['num_datapoints']} simulated from the model", log_likelihood=None,
                         bdmc_lower=mean_sd([r["lower"] for r in runs])[0],
                         bdmc_upper=mean_sd([r["upper"] for r in runs])[0], khat_share_above_0_7=None,
                         bdmc_gap=round(float(np.mean([r["gap"] for r in runs])), 3),
                         bdmc_gap_max=round(float(max(r["gap_max"] for r in runs)), 3), seeds=with_bdmc))
    return rows


def comparison(runs, kind):
    """In words: each mixture prior's IS (``kind``) log-likelihood minus the VAE's, seed by seed (same seed, same
    images), its mean and standard deviation over seeds, and whether it exceeds the spread."""
    def per_seed(name):
        return {s: r[kind]["estimators"]["refined"]["log_likelihood"] for s, r in runs.get(name, {}).items()
                if r.get(kind)}

    base, words = per_seed("vae"), []
    for name in ("vade", "gmvae", "hier"):
        mine = per_seed(name)
        common = sorted(set(mine) & set(base))
        if not common:
            continue
        diffs = np.array([mine[s] - base[s] for s in common])
        sd = float(diffs.std(ddof=1)) if len(diffs) > 1 else None
        beats = sd is not None and diffs.mean() - 2 * sd / np.sqrt(len(diffs)) > 0
        words.append(f"{MODELS[name].split(' (')[0]} - VAE: {diffs.mean():+.2f} nats"
                     + (f" (sd {sd:.2f} over seeds {common}; " + ("more than" if beats else "not more than")
                        + " twice its standard error)" if sd is not None else f" (seed {common[0]} only)"))
    return "; ".join(words)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    out_dir = Path(argv[0]) if argv else ROOT / "benchmarks" / "results" / "likelihood-runs"
    runs = collect(out_dir)
    rows = [row for name in MODELS if name in runs for row in rows_for(name, runs[name])]
    rows += [dict(ref, table=TABLE, dataset="binarized MNIST (test split)", seeds=None) for ref in REFERENCES]
    columns = ["model", "estimator", "num_samples", "images", "log_likelihood", "log_likelihood_sd",
               "khat_share_above_0_7", "is_on_these_images", "mean_abs_is_minus_ais", "bdmc_lower", "bdmc_upper",
               "bdmc_gap", "bdmc_gap_max", "seeds", "train", "note"]
    path = ROOT / "benchmarks" / "results" / "likelihood-binarized-mnist.json"
    notes = ("IS: the reliable `is` (`evaluate --estimator is`'s settings) with the sample count shown, on the first "
             "500 test images of the static binary draw, per seed, then the mean and sd over seeds; AIS beside it on "
             "fewer images (the IS estimate on those images, and the mean |IS - AIS| per image); BDMC on images "
             "simulated from each model: its two bounds are of those images, not of the test images. Seeds differ "
             "per row where runs were missing: see `seeds`. Mixture priors against the standard normal, paired by "
             "seed, IS at S = 5000 where every run has it (else 1000): "
             + comparison(runs, "is5000" if all(r.get("is5000") for m in runs.values() for r in m.values())
                          else "is")
             + ". Published rows are others' protocols and networks (not measured here).")
    path.write_text(json.dumps({"rows": rows, "tables": {TABLE: {"columns": columns, "notes": notes}}}, indent=1)
                    + "\n")
    print(notes)
    for row in rows:
        print({k: row.get(k) for k in ("model", "estimator", "log_likelihood", "log_likelihood_sd", "seeds")})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
