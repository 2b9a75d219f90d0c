"""Every script in examples/ runs with tiny settings; a script missing from this list fails."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
TINY_ARGS = {
    "free_bits_collapse.py": ["--seeds", "2", "--epochs", "2", "--num-datapoints", "200", "--out", "fb.json",
                              "--figure", "fb.png"],
}


def test_every_example_is_listed():
    assert sorted(p.name for p in EXAMPLES.glob("*.py")) == sorted(TINY_ARGS)


@pytest.mark.parametrize("name", sorted(TINY_ARGS))
def test_example_runs(name, tmp_path):
    result = subprocess.run([sys.executable, str(EXAMPLES / name), *TINY_ARGS[name]], cwd=tmp_path,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    produced = [a for a in TINY_ARGS[name] if "." in a and not a[0].isdigit()]
    for path in produced:
        assert (tmp_path / path).stat().st_size > 0, path
