#!/usr/bin/env bash
# The GPU run in one command (issue 20): the CUDA tests, then the vade-mnist and gmvae-mnist-k10 (K = 10, scored on
# the 10k test images) protocols timed on the device, one seed each; the rows go to benchmarks/results/gpu.json,
# written once at the end (a failed run leaves the earlier file as it was).
#
#   benchmarks/gpu.sh             # on a CUDA machine; meant to take under 8 minutes on one H200 (not yet run on one)
#   benchmarks/gpu.sh --smoke     # (or SMALL=1) the same steps shrunk to run on the CPU in about a minute;
#                                 # writes to /tmp/pyro-gmvae-gpu-smoke.json, never into benchmarks/results/
#
# Environment: PYTHON (default python), DATA_DIR (MNIST's IDX files, default ../shared/data/mnist),
# DEVICE (default cuda; cpu with --smoke), SEED (default 0), OUT (the results file), RUNS (where the runs are
# trained, default runs/gpu; a temporary folder with --smoke), PARALLEL=1 (train both protocols at once: each
# one's UMAP is single-threaded, so on a many-core GPU machine the two fits overlap; each row's wall_s is
# then its own command's time with the other running beside it).
set -euo pipefail

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; }

SMOKE=${SMALL:-0}
for arg in "$@"; do
    case "$arg" in
        --smoke) SMOKE=1 ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu.sh: unknown argument '$arg'; pass --smoke or nothing (--help for more)" >&2; exit 2 ;;
    esac
done

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA_DIR=${DATA_DIR:-../shared/data/mnist}
SEED=${SEED:-0}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

if [ "$SMOKE" = 1 ]; then
    DEVICE=${DEVICE:-cpu}
    OUT=${OUT:-${TMPDIR:-/tmp}/pyro-gmvae-gpu-smoke.json}
    RUNS=${RUNS:-$WORK/runs}
    # a few hundred images, one epoch of each phase, one thread: the commands of the full run, not its numbers
    SIZE=(--num-datapoints 500 --pretrain-epochs 1 --init-warmup-epochs 1 --epochs 1 --threads 1)
    EVAL_SAMPLES=1
    THREADS=(--threads 1)
else
    DEVICE=${DEVICE:-cuda}
    OUT=${OUT:-benchmarks/results/gpu.json}
    RUNS=${RUNS:-runs/gpu}
    SIZE=()
    EVAL_SAMPLES=10
    THREADS=()
fi

# every check before any work
[ -d "$DATA_DIR" ] || { echo "gpu.sh: no MNIST folder at '$DATA_DIR'; set DATA_DIR to the folder with MNIST's IDX files" >&2; exit 2; }
"$PYTHON" -c "import pyro_gmvae" || { echo "gpu.sh: '$PYTHON' cannot import pyro_gmvae; set PYTHON or install the package" >&2; exit 2; }
if [ "$DEVICE" = cuda ]; then
    "$PYTHON" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
        || { echo "gpu.sh: torch sees no CUDA device; run on a GPU machine, or pass --smoke for the CPU check" >&2; exit 2; }
fi
mkdir -p "$(dirname "$OUT")" "$RUNS"

now() { "$PYTHON" -c "import time; print(time.time())"; }
now > "$WORK/start"

# 1. the CUDA tests: the test files skipped without a GPU
mapfile -t CUDA_TESTS < <(grep -rl "skipif(not torch.cuda.is_available()" tests --include='test_*.py' | sort)
[ "${#CUDA_TESTS[@]}" -gt 0 ] || { echo "gpu.sh: found no CUDA tests under tests/" >&2; exit 1; }
echo "gpu.sh: CUDA tests: ${CUDA_TESTS[*]}" >&2
t0=$(now)
"$PYTHON" -m pytest -q -p no:cacheprovider -m "not slow" --junitxml="$WORK/cuda-tests.xml" "${CUDA_TESTS[@]}"
echo "$t0 $(now)" > "$WORK/tests.time"

# 2. the protocols, each timed from the command's start to its end (data loading, pretraining, UMAP, SVI)
train() {  # name, then the train flags
    local name=$1; shift
    echo "gpu.sh: training $name" >&2
    local t0; t0=$(now)
    "$PYTHON" -m pyro_gmvae train "$@" --device "$DEVICE" --data-dir "$DATA_DIR" --seed "$SEED" \
        --out "$RUNS/$name" --overwrite --no-progress "${SIZE[@]}"
    echo "$t0 $(now)" > "$WORK/$name.time"
}
if [ "${PARALLEL:-0}" = 1 ]; then  # both at once: each UMAP runs on one CPU core, the GPU is mostly idle
    train vade-mnist --preset vade-mnist & vade=$!
    train gmvae-mnist-k10 --preset gmvae-mnist-k10 & gmvae=$!
    wait "$vade"
    wait "$gmvae"
else
    train vade-mnist --preset vade-mnist
    train gmvae-mnist-k10 --preset gmvae-mnist-k10
fi
t0=$(now)
# the clustering scores are what is read: the guide-proposal estimate of log p(x), not the reliable one that fits
# every test image's posterior (minutes of its own), as benchmarks/accuracy.py
"$PYTHON" -m pyro_gmvae evaluate "$RUNS/gmvae-mnist-k10" --split test --estimator is-guide --num-samples "$EVAL_SAMPLES" \
    --device "$DEVICE" "${THREADS[@]}" > /dev/null
echo "$t0 $(now)" > "$WORK/gmvae-mnist-k10.eval.time"

# 3. the rows, written atomically
"$PYTHON" - "$WORK" "$RUNS" "$OUT" "$DEVICE" "$SMOKE" "$SEED" "$DATA_DIR" <<'EOF'
import datetime, json, os, platform, sys, time, xml.etree.ElementTree as ET
from pathlib import Path

import pyro
import torch

from pyro_gmvae.runs import load_checkpoint

work, runs, out, device, smoke, seed, data_dir = sys.argv[1:]
work, runs = Path(work), Path(runs)


def seconds(name):
    start, end = map(float, (work / f"{name}.time").read_text().split())
    return round(end - start, 1)


def start_report(run):
    path = run / "pretrained.pt"
    report = load_checkpoint(path).get("pretrain_report") or {} if path.exists() else {}  # weights_only
    return {k: report.get(k) for k in ("start_labels_acc", "init_acc", "warmup_acc", "pretrain_seconds", "init_seconds")}


suite = ET.parse(work / "cuda-tests.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
tests = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
if device == "cuda" and (tests["skipped"] or tests["failures"] or tests["errors"] or not tests["tests"]):
    sys.exit(f"gpu.sh: the CUDA tests did not all run and pass on the device ({tests}); nothing written")

name = torch.cuda.get_device_name() if device == "cuda" else f"cpu ({platform.machine()}, {os.cpu_count()} cores)"
common = {"table": "GPU run", "device": name, "seed": int(seed), "torch": torch.__version__, "pyro": pyro.__version__,
          "date": datetime.date.today().isoformat(), "smoke": smoke == "1",
          "parallel": os.environ.get("PARALLEL", "0") == "1",
          "command": "benchmarks/gpu.sh" + (" --smoke" if smoke == "1" else "")}
rows = [dict(common, name="CUDA tests", wall_s=seconds("tests"), acc=None,
             detail=f"{tests['tests']} tests, {tests['skipped']} skipped, {tests['failures'] + tests['errors']} failed")]

last = json.loads((runs / "vade-mnist" / "metrics.jsonl").read_text().splitlines()[-1])
shrunk = " [smoke: 500 images, 1 epoch per phase]" if smoke == "1" else ""
rows.append(dict(common, name="vade-mnist (all 70k, scored on them)" + shrunk, wall_s=seconds("vade-mnist"), acc=last["acc"],
                 nmi=last["nmi"], ari=last["ari"], epochs=last["epoch"], **start_report(runs / "vade-mnist"),
                 detail=f"pyro-gmvae train --preset vade-mnist --device {device} --seed {seed}"))
run = runs / "gmvae-mnist-k10"
ev = json.loads((run / "eval.json").read_text())
assert ev.get("split") == "test", ev.get("split")
last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
rows.append(dict(common, name="gmvae-mnist K=10 (60k, scored on the 10k test images)" + shrunk,
                 wall_s=round(seconds("gmvae-mnist-k10") + seconds("gmvae-mnist-k10.eval"), 1),
                 train_wall_s=seconds("gmvae-mnist-k10"), acc=ev["acc"], acc_most_confident=ev.get("acc_most_confident"),
                 nmi=ev["nmi"], ari=ev["ari"], epochs=last["epoch"], **start_report(run),
                 detail=f"pyro-gmvae train --preset gmvae-mnist-k10 --device {device} --seed {seed}; "
                        "pyro-gmvae evaluate --split test"))
total = round(time.time() - float((work / "start").read_text()), 1)  # end to end (PARALLEL overlaps the rows)
payload = {"rows": rows, "total_wall_s": total,
           "tables": {"GPU run": {"columns": ["name", "wall_s", "acc", "nmi", "init_acc", "warmup_acc", "detail"],
                                  "notes": "benchmarks/gpu.sh: wall-clock seconds of each command on the device, one "
                                           "seed; acc is the Hungarian accuracy of the last epoch."}}}
tmp = Path(out).with_name(Path(out).name + ".tmp")
tmp.write_text(json.dumps(payload, indent=1) + "\n")
os.replace(tmp, out)  # atomic: the earlier results stay whole until this point
print(f"gpu.sh: wrote {out} (total {total} s)", file=sys.stderr)
EOF
