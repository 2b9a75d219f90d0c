"""Every user guide in guides/ runs: its ```python blocks (one namespace per guide, in order) and its
```bash blocks, in a fresh folder. ```console blocks (installs, long runs) are shown, not run.

A guide added to guides/ without being listed here fails the suite, and so does a listed guide
that is missing.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

GUIDES = Path(__file__).resolve().parents[1] / "guides"
LISTED = [
    "01-quickstart.md",
    "02-models-and-objectives.md",
    "03-swapping-priors-and-guides.md",
    "04-free-bits.md",
    "05-marginal-likelihood.md",
    "06-hierarchical-variant.md",
    "07-gpu-and-performance.md",
    "08-reproducing-the-papers.md",
    "09-distributed-training.md",
    "10-cluster-inference.md",
    "11-choosing-k.md",
    "12-likelihood-grade-training.md",
]
BLOCK = re.compile(r"^```(\w+)\n(.*?)^```", re.S | re.M)


def blocks(path):
    return [(lang, code) for lang, code in BLOCK.findall(path.read_text()) if lang in ("python", "bash")]


@pytest.fixture(autouse=True)
def _isolated_registries():
    """A guide registers components of its own and may import a plugin: undo both, so that later tests see
    the library's registries, path and plugin list as they were."""
    from pyro_gmvae import plugins, registry

    saved = [(r, r.snapshot())
             for r in (registry.GUIDES, registry.MODELS, registry.PRIORS, registry.NETWORKS,
                       registry.CLUSTER_INFERENCE)]
    path, imported = list(sys.path), list(plugins._imported)
    yield
    for r, before in saved:
        r.restore(before)
    sys.path[:] = path
    for name in set(plugins._imported) - set(imported):  # a guide's plugin module lives in its tmp folder
        sys.modules.pop(name, None)
    plugins._imported[:] = imported


def test_every_guide_is_listed():
    assert sorted(p.name for p in GUIDES.glob("*.md")) == sorted(LISTED)


@pytest.mark.parametrize("name", LISTED)
def test_guide_runs(name, tmp_path, monkeypatch):
    code_blocks = blocks(GUIDES / name)
    assert code_blocks, f"{name} has no runnable code block"
    monkeypatch.chdir(tmp_path)
    namespace = {"__name__": "__guide__"}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for lang, code in code_blocks:
        if lang == "python":
            exec(compile(code, f"{name}:python", "exec"), namespace)
        else:
            bin_dir = os.path.dirname(sys.executable)
            env["PATH"] = bin_dir + os.pathsep + env.get("PATH", "")
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", code], cwd=tmp_path, env=env,
                                    capture_output=True, text=True, timeout=600)
            assert result.returncode == 0, f"{name} bash block failed:\n{code}\n{result.stderr[-2000:]}"


def test_readme_python_example_runs(tmp_path, monkeypatch):
    readme = GUIDES.parent / "README.md"
    code = [c for lang, c in BLOCK.findall(readme.read_text()) if lang == "python"]
    assert code, "README.md lost its Python example"
    monkeypatch.chdir(tmp_path)
    for block in code:
        exec(compile(block, "README.md:python", "exec"), {"__name__": "__readme__"})
