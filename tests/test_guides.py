"""Every user guide in guides/ runs: its ```python blocks (one namespace per guide, in order) and its
```bash blocks, in a fresh folder. ```console blocks (installs, long runs) are shown, not run. An ```output
block right after a ```python block is what that block prints: the test holds the printed text to it, word for
word, and every number within 1 % or 0.01 (guides are seeded; the tolerance absorbs float round-off only).

A guide added to guides/ without being listed here fails the suite, and so does a listed guide
that is missing.
"""

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

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
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def blocks(path):
    """The runnable blocks, each with the ```output block that follows it (or None)."""
    found = BLOCK.findall(path.read_text())
    out = []
    for i, (lang, code) in enumerate(found):
        if lang in ("python", "bash"):
            following = found[i + 1] if i + 1 < len(found) else None
            out.append((lang, code, following[1] if following and following[0] == "output" else None))
    return out


def assert_prints(printed, expected, where):
    """``printed`` is ``expected``: the same words, and numbers within 1 % or 0.01."""
    got, want = printed.strip().splitlines(), expected.strip().splitlines()
    assert len(got) == len(want), f"{where} printed {len(got)} lines, its text shows {len(want)}:\n{printed}"
    for g, w in zip(got, want):
        assert NUMBER.sub("#", g) == NUMBER.sub("#", w), f"{where} printed\n{g}\nwhere its text shows\n{w}"
        for a, b in zip(NUMBER.findall(g), NUMBER.findall(w)):
            assert abs(float(a) - float(b)) <= max(0.01, 0.01 * abs(float(b))), \
                f"{where} printed\n{g}\nwhere its text shows\n{w}"


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
def test_guide_runs(name, tmp_path, monkeypatch, request):
    code_blocks = blocks(GUIDES / name)
    assert code_blocks, f"{name} has no runnable code block"
    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    request.addfinalizer(lambda: torch.set_num_threads(threads))  # a guide may set one thread for its numbers
    namespace = {"__name__": "__guide__"}
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    for lang, code, expected in code_blocks:
        if lang == "python":
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                exec(compile(code, f"{name}:python", "exec"), namespace)
            sys.stdout.write(printed.getvalue())
            if expected is not None:
                assert_prints(printed.getvalue(), expected, name)
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


def test_printed_output_is_held_to_the_text():
    assert_prints("acc 0.997  ELBO -2.83\n", "acc 0.997  ELBO -2.83", "x")
    assert_prints("acc 0.9971 ELBO -2.8301", "acc 0.997 ELBO -2.83", "x")  # round-off
    for wrong in ("acc 0.957 ELBO -2.83", "acc 0.997 ELBO -2.86", "acc 0.997 ELBO -2.83 nats", "acc 0.997"):
        with pytest.raises(AssertionError):
            assert_prints(wrong, "acc 0.997 ELBO -2.83", "x")
