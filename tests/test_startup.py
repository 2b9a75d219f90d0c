"""Start-up: ``import pyro_gmvae``, the parser and a refused flag import nothing heavy beyond torch and Pyro
(scikit-learn alone is over a second), so that ``pyro-gmvae --help`` costs about what ``import torch, pyro``
does (benchmarks/startup.py times it); the heavy packages are imported where they are used."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pyro_gmvae

#: Imported on use only: each costs a noticeable share of a second or more at import.
HEAVY = ("sklearn", "scipy", "matplotlib", "umap", "pynndescent", "numba", "arviz", "pandas", "tensorboard")

ROOT = Path(pyro_gmvae.__file__).resolve().parents[1]


def _python(*args, cwd):
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120)


def test_a_refused_flag_imports_nothing_heavy(tmp_path):
    """The whole path of ``pyro-gmvae train --num-clsuters 3``: the package, the CLI, the parser, the refusal."""
    result = _python("-X", "importtime", "-m", "pyro_gmvae", "train", "--num-clsuters", "3", cwd=tmp_path)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1].endswith("did you mean --num-clusters?"), lines[-1]
    imported = {line.split("|")[-1].strip().split(".")[0] for line in lines if line.startswith("import time:")}
    assert "pyro_gmvae" in imported and "torch" in imported  # the measurement works
    assert sorted(imported & set(HEAVY)) == []


def test_the_package_and_the_parser_import_nothing_heavy(tmp_path):
    code = ("import json, sys, pyro_gmvae, pyro_gmvae.cli; pyro_gmvae.cli.build_parser().format_help(); "
            f"print(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))")
    result = _python("-c", code, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_the_estimator_is_a_lazy_attribute_of_the_package():
    from pyro_gmvae import GMVAEClusterer
    from pyro_gmvae.estimator import GMVAEClusterer as defined

    assert GMVAEClusterer is defined and pyro_gmvae.GMVAEClusterer is defined
    assert "GMVAEClusterer" in dir(pyro_gmvae) and "GMVAEClusterer" in pyro_gmvae.__all__
    try:
        pyro_gmvae.GMVAEClustrer
    except AttributeError as e:
        assert "has no attribute 'GMVAEClustrer'" in str(e)
    else:
        raise AssertionError("a misspelt attribute must raise AttributeError")
