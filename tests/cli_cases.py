"""The bad-input harness of the reliability tests: a finished tiny run to copy, case builders, and the check
that a refused command prints one line naming the problem and leaves every file as it was."""

import shutil

import pyro
import pytest

from pyro_gmvae import cli

#: A one-epoch run on 200 synthetic points with toy networks: seconds, not minutes.
TINY = ["--dataset", "synthetic", "--num-datapoints", "200", "--network", "toy", "--num-clusters", "3",
        "--batch-size", "64", "--epochs", "1", "--pretrain-epochs", "0", "--no-progress"]


def snapshot(folder):
    """Every file under ``folder`` with its bytes and modification time (folders too: none may appear)."""
    return {p.relative_to(folder): (p.read_bytes(), p.stat().st_mtime_ns) if p.is_file() else "dir"
            for p in sorted(folder.rglob("*"))}


@pytest.fixture(scope="module")
def good_run(tmp_path_factory):
    """A finished one-epoch GMVAE run; each test works on a copy."""
    out = tmp_path_factory.mktemp("good") / "run"
    pyro.clear_param_store()
    assert cli.main(["train", "--model", "gmvae", *TINY, "--out", str(out)]) == 0
    return out


def copy_run(good_run, tmp_path, edit=None):
    run = tmp_path / "existing"
    shutil.copytree(good_run, run)
    if edit is not None:
        edit(run)
    return run


# A case is (argv builder taking (tmp_path, good_run) and returning (argv, the folder that must stay as it
# was, or None), the words the one-line message must hold). Unless a builder says otherwise, argv gets
# --out OUT and OUT must not be created.
def train(*args):
    return lambda tmp_path, good_run: (["train", *TINY, *args], None)


def on_run(make_argv, edit=None):
    def build_case(tmp_path, good_run):
        run = copy_run(good_run, tmp_path, edit)
        return make_argv(run), run
    return build_case


def assert_refused(case, tmp_path, good_run, capsys):
    """Run a case: exit status 2, one line ``pyro-gmvae CMD: error: ...`` holding every word, nothing made."""
    make, words = case
    argv, kept = make(tmp_path, good_run)
    out = tmp_path / "out"
    if kept is None:
        argv = [*argv, "--out", str(out)]
    before = snapshot(tmp_path)
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"pyro-gmvae {argv[0]}: error: "), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    assert not out.exists()
    assert snapshot(tmp_path) == before  # nothing created or changed, the existing run included
