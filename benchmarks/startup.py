"""Start-up cost of the command line against ``import torch, pyro`` (issue 33): CPU time (user + sys) of each
command as a child process, measured by the parent with ``resource.getrusage(RUSAGE_CHILDREN)``, the commands
interleaved round by round so that a busy neighbour slows all of them alike; the median of ``--repeats``
rounds and its ratio to the baseline's median.

    taskset -c 0 python benchmarks/startup.py --repeats 5

Run from the repository root (``PYTHONPATH`` is set to it, so the working tree's code is timed).
"""

import argparse
import os
import resource
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

COMMANDS = {
    "import torch, pyro": [sys.executable, "-c", "import torch, pyro"],
    "pyro-gmvae --help": [sys.executable, "-m", "pyro_gmvae", "--help"],
    "pyro-gmvae train --help": [sys.executable, "-m", "pyro_gmvae", "train", "--help"],
    "pyro-gmvae train --num-clsuters 3": [sys.executable, "-m", "pyro_gmvae", "train", "--num-clsuters", "3"],
    "import pyro_gmvae": [sys.executable, "-c", "import pyro_gmvae"],
}


def cpu_seconds(command, env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run(command, env=env, cwd="/", stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    times = {name: [] for name in COMMANDS}
    for name, command in COMMANDS.items():  # a first, untimed run of each: the files in the page cache
        cpu_seconds(command, env)
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(cpu_seconds(command, env))
    base = statistics.median(times["import torch, pyro"])
    for name, values in times.items():
        median = statistics.median(values)
        print(f"{name:40s} median {median:.2f} s CPU  ({median / base:.2f}x)  runs: "
              + " ".join(f"{v:.2f}" for v in values))


if __name__ == "__main__":
    main()
