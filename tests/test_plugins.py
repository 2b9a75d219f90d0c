"""Plugins: a prior of one's own, registered by a module given with ``--import``, trains from the shell and
is found again by a fresh process that reopens the run (the module is recorded in config.json)."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

from pyro_gmvae import GUIDES, PRIORS, ModelConfig, import_plugins, plugins, register_guide, registry
from pyro_gmvae.cli import main
from pyro_gmvae.errors import CheckpointError, ConfigError
from pyro_gmvae.inference import DiagonalNormalHead
from pyro_gmvae.runs import read_config

PLUGIN = textwrap.dedent('''
    import pyro, pyro.distributions as dist, torch
    from pyro.nn import PyroModule
    from pyro_gmvae import register_prior
    from pyro_gmvae.models.priors import ENUM, positive

    class StudentTMixturePrior(PyroModule):
        cluster_sites = ("cluster",)

        def __init__(self, latent_dim, num_clusters, **unused):
            super().__init__()
            self.num_clusters, self.guide_sites = num_clusters, {"z": latent_dim}
            self.logits = torch.nn.Parameter(torch.zeros(num_clusters))
            self.loc = torch.nn.Parameter(torch.randn(num_clusters, latent_dim))
            self.scale_raw = torch.nn.Parameter(torch.zeros(num_clusters, latent_dim))

        def forward(self):
            c = pyro.sample("cluster", dist.Categorical(logits=self.logits), infer=ENUM)
            return pyro.sample("z", dist.StudentT(4.0, self.loc[c], positive(self.scale_raw)[c]).to_event(1))

    register_prior("test-plugin-student-t", StudentTMixturePrior)
''')


ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _cli(args, cwd, path=()):
    """``python -m pyro_gmvae ARGS`` in ``cwd``, with PYTHONPATH this checkout and ``path`` only."""
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([*map(str, path), ROOT])}
    return subprocess.run([sys.executable, "-m", "pyro_gmvae", *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)


def test_a_plugin_prior_trains_and_reopens_in_a_fresh_process(tmp_path, monkeypatch):
    (tmp_path / "my_priors.py").write_text(PLUGIN)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_imported", [])  # this test's imports only
    priors = PRIORS.snapshot()  # restored (the plugin's prior removed) after the test
    threads = torch.get_num_threads()
    try:
        assert main(["train", "--import", "my_priors", "--prior", "test-plugin-student-t", "--dataset", "synthetic",
                     "--num-datapoints", "200", "--num-clusters", "3", "--epochs", "1", "--pretrain-epochs", "0",
                     "--out", str(tmp_path / "run"), "--no-progress", "--threads", "1"]) == 0
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(threads)
        PRIORS.restore(priors)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["plugins"] == ["my_priors"]
    # another process, without --import: config.json names the module, which is not imported unasked
    refused = _cli(["evaluate", "run", "--num-samples", "4"], tmp_path, path=[tmp_path])
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "names the plugin modules ['my_priors']" in refused.stderr and "--import my_priors" in refused.stderr
    for trust in (["--import", "my_priors"], ["--trust-plugins"]):
        evaluate = _cli(["evaluate", "run", "--num-samples", "4", "--no-save", *trust], tmp_path, path=[tmp_path])
        assert evaluate.returncode == 0, evaluate.stderr
        assert "log_likelihood" in json.loads(evaluate.stdout)
        assert "unchecked" in evaluate.stderr  # 4 samples: too few for k-hat, and evaluate says so
        # the process says which module it imports, from which file, before importing it
        assert f"importing plugin module my_priors ({tmp_path / 'my_priors.py'})" in evaluate.stderr


def test_a_run_whose_plugin_is_gone_says_which_module_and_how_to_supply_it(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    config = {"model": {"prior": "test-plugin-never-registered"}, "train": {}, "data": {},
              "plugins": ["test_plugin_module_that_is_not_there"]}
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="test_plugin_module_that_is_not_there.*--trust-plugins"):
        read_config(run)  # untrusted: refused before any import is tried
    with plugins.trusted_plugins(), pytest.raises(CheckpointError,
                                                  match="test_plugin_module_that_is_not_there.*PYTHONPATH"):
        read_config(run)
    config["plugins"] = []  # not recorded (a run from an older version): the message says how to supply it
    (run / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unknown prior 'test-plugin-never-registered'.*--import MODULE"):
        read_config(run)


def test_import_plugins_names_the_missing_module():
    with pytest.raises(ConfigError, match="cannot import plugin module 'no_such_plugin_module'"):
        import_plugins(["no_such_plugin_module"])


def test_register_guide_makes_a_guide_choosable_by_name():
    class Head(DiagonalNormalHead):
        pass

    guides = registry.GUIDES.snapshot()
    try:
        assert register_guide("test-head", Head) is Head
        assert ModelConfig(guide="test-head", data_dim=6, network="toy").guide == "test-head"
    finally:
        registry.GUIDES.restore(guides)
    with pytest.raises(ConfigError, match="unknown guide 'test-head'.*register_guide"):
        ModelConfig(guide="test-head", data_dim=6, network="toy")


class _EntryPoint:
    def __init__(self, name, load):
        self.name, self.value, self.load = name, f"tests:{name}", load


def test_entry_points_register_on_first_need_and_a_broken_one_only_warns(monkeypatch):
    import importlib.metadata

    class Head(DiagonalNormalHead):
        pass

    def broken():
        raise ImportError("no such package")

    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda group=None: list(group_list) if group == registry.ENTRY_POINT_GROUP else [])
    group_list = [_EntryPoint("good", lambda: (lambda: register_guide("test-entry-point-head", Head))),
                  _EntryPoint("broken", broken)]
    monkeypatch.setattr(registry, "_entry_points_loaded", False)
    guides = registry.GUIDES.snapshot()  # restored (the head removed) after the test
    try:
        with pytest.warns(RuntimeWarning, match="entry point 'broken'.*failed to load"):
            config = ModelConfig(guide="test-entry-point-head", data_dim=6, network="toy")
        assert config.guide == "test-entry-point-head" and GUIDES["test-entry-point-head"] is Head
    finally:
        registry.GUIDES.restore(guides)


def test_every_register_function_checks_its_arguments():
    from pyro_gmvae import register_model, register_network, register_prior
    from pyro_gmvae.models import ModelSpec, StandardNormalPrior

    @register_prior("test-decorated-prior")
    class Prior(StandardNormalPrior):
        pass

    try:
        assert PRIORS["test-decorated-prior"] is Prior
    finally:
        PRIORS.pop("test-decorated-prior")
    with pytest.raises(ConfigError, match="takes a ModelSpec"):
        register_model("test-model", "mixture")
    with pytest.raises(ConfigError, match="non-empty string name"):
        register_guide("", DiagonalNormalHead)
    with pytest.raises(ConfigError, match="hidden_dims must be positive integers"):
        register_network("test-net", (0,))
    assert ModelSpec("mixture").prior == "mixture"


# -- issue 23: plugins cannot come from the working folder, and every failure is one line naming the plugin --

from cli_cases import copy_run, good_run, snapshot  # noqa: E402,F401

PAYLOAD = "import pathlib; pathlib.Path({marker!r}).touch()\n"


def _record_plugins(run, plugins_list):
    config = json.loads((run / "config.json").read_text())
    config["plugins"] = plugins_list
    (run / "config.json").write_text(json.dumps(config))


def test_a_recorded_plugin_is_not_imported_from_the_working_folder(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    marker = tmp_path / "marker"
    (run / "test_evil_plugin.py").write_text(PAYLOAD.format(marker=str(marker)))
    _record_plugins(run, ["test_evil_plugin"])
    before = snapshot(run)
    result = _cli(["evaluate", ".", "--num-samples", "4", "--threads", "1"], run)  # python -m: cwd on sys.path
    assert result.returncode == 2 and "names the plugin modules ['test_evil_plugin']" in result.stderr
    assert not marker.exists() and snapshot(run) == before
    result = _cli(["evaluate", ".", "--num-samples", "4", "--threads", "1", "--trust-plugins"], run)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "cannot import plugin module 'test_evil_plugin'" in lines[0], result.stderr
    assert "working folder is not searched" in lines[0] and "PYTHONPATH" in lines[0]
    assert not marker.exists() and snapshot(run) == before


def test_import_does_not_search_the_working_folder(tmp_path, monkeypatch, capsys):
    marker = tmp_path / "marker"
    (tmp_path / "test_cwd_plugin.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert main(["evaluate", "x", "--import", "test_cwd_plugin"]) == 2
    assert "no module 'test_cwd_plugin' on the Python path" in capsys.readouterr().err
    assert not marker.exists()


@pytest.mark.parametrize("name", [".", ".foo", "..x", "pkg..x", "my_plugin.py", "some/folder", " x"])
def test_relative_or_malformed_names_are_refused(name, tmp_path, good_run, capsys):
    assert main(["sample", str(good_run), "--import", name]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "pyro-gmvae: error:" in err
    assert any(w in err for w in ("absolute module name", "a plugin is a module name", "is a file name"))


def test_a_relative_name_in_config_json_is_refused(tmp_path, good_run, capsys):
    run = copy_run(good_run, tmp_path)
    _record_plugins(run, [".x"])
    before = snapshot(run)
    assert main(["evaluate", str(run), "--num-samples", "4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "'.x' is not an absolute module name" in err, err
    assert snapshot(run) == before


BROKEN = {
    "runtime": ("raise RuntimeError('boom')\n", "RuntimeError: boom"),
    "syntax": ("def f(:\n    pass\n", "SyntaxError"),
    "zero": ("x = 1 / 0\n", "ZeroDivisionError: division by zero"),
    "exit": ("import sys; sys.exit(3)\n", "SystemExit: 3"),
}


def _without_announcements(err):
    """stderr's lines but the "importing plugin module" announcements, checked to come first."""
    lines = err.strip().splitlines()
    announced = [line.startswith("pyro-gmvae: importing plugin module ") for line in lines]
    assert announced == sorted(announced, reverse=True), lines  # announcements before anything else
    return [line for line, a in zip(lines, announced) if not a]


@pytest.mark.parametrize("case", list(BROKEN))
@pytest.mark.parametrize("debug", [False, True])
def test_a_plugin_that_raises_is_one_line_naming_it(case, debug, tmp_path, good_run, monkeypatch, capsys):
    source, words = BROKEN[case]
    name = f"test_broken_plugin_{case}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv(plugins.DEBUG_ENV, "1" if debug else "0")
    assert main(["sample", str(good_run), "--import", name]) == 2
    err = _without_announcements(capsys.readouterr().err)
    assert f"plugin module {name!r}" in err[-1] and words in err[-1] and "failed while being imported" in err[-1]
    assert str(tmp_path / f"{name}.py") in err[-1]
    assert (len(err) > 1 and "Traceback" in err[0]) if debug else len(err) == 1


def test_a_plugin_whose_dependency_is_missing_names_the_dependency(tmp_path, good_run, monkeypatch, capsys):
    (tmp_path / "test_plugin_needs_dep.py").write_text("import test_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert main(["sample", str(good_run), "--import", "test_plugin_needs_dep"]) == 2
    err = "\n".join(_without_announcements(capsys.readouterr().err))
    assert len(err.splitlines()) == 1
    assert "'test_plugin_needs_dep'" in err and "imports 'test_dependency_that_is_not_installed'" in err
    assert "install it" in err and "PYTHONPATH" not in err


@pytest.mark.parametrize("source, words", [
    ("from pyro_gmvae import register_network\nregister_network('toy', (8,))\n", "a network named 'toy'"),
    ("from pyro_gmvae import register_prior\nfrom pyro_gmvae.models import StandardNormalPrior\n"
     "register_prior('mixture', StandardNormalPrior)\n", "a prior named 'mixture'"),
])
def test_a_plugin_cannot_replace_a_builtin(source, words, tmp_path, good_run, monkeypatch, capsys):
    name = f"test_replacing_plugin_{abs(hash(source)) % 1000}"
    (tmp_path / f"{name}.py").write_text(source)
    monkeypatch.syspath_prepend(str(tmp_path))
    saved = [(r, r.snapshot()) for r in (registry.NETWORKS, registry.PRIORS)]
    try:
        assert main(["sample", str(good_run), "--import", name]) == 2
        assert registry.NETWORKS["toy"] == saved[0][1]["toy"] and registry.PRIORS["mixture"] is saved[1][1]["mixture"]
    finally:
        for r, before in saved:
            r.restore(before)
    err = "\n".join(_without_announcements(capsys.readouterr().err))
    assert len(err.splitlines()) == 1 and f"plugin module {name!r}" in err and words in err
    assert "registered already" in err


def test_a_network_registered_by_a_plain_import_is_recorded(tmp_path, monkeypatch):
    import importlib

    (tmp_path / "test_plain_network.py").write_text(
        "from pyro_gmvae import register_network\nregister_network('test-plain-net', (7,))\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(plugins, "_imported", [])
    networks = registry.NETWORKS.snapshot()
    try:
        importlib.import_module("test_plain_network")  # not through --import
        assert main(["train", "--network", "test-plain-net", "--dataset", "synthetic", "--num-datapoints", "200",
                     "--num-clusters", "3", "--epochs", "1", "--pretrain-epochs", "0", "--out", str(tmp_path / "run"),
                     "--no-progress", "--threads", "1"]) == 0
    finally:
        registry.NETWORKS.restore(networks)
        sys.modules.pop("test_plain_network", None)
    assert json.loads((tmp_path / "run" / "config.json").read_text())["plugins"] == ["test_plain_network"]


@pytest.mark.parametrize("kind", ["prior", "guide", "init", "cluster_inference"])
def test_every_register_function_works_as_a_decorator(kind):
    from pyro_gmvae import registry
    from pyro_gmvae.inference.cluster_inference import Exact, register_cluster_inference
    from pyro_gmvae.inference.pretrain import register_init
    from pyro_gmvae.models import StandardNormalPrior, register_prior

    register, table, base = {
        "prior": (register_prior, registry.PRIORS, StandardNormalPrior),
        "guide": (register_guide, registry.GUIDES, DiagonalNormalHead),
        "init": (register_init, registry.INIT_STRATEGIES, None),
        "cluster_inference": (register_cluster_inference, registry.CLUSTER_INFERENCE, Exact),
    }[kind]
    name = f"test-decorated-{kind}"
    if base is None:
        def component(codes, num_clusters, seed):
            raise AssertionError("never called")
    else:
        component = type("Component", (base,), {})
    try:
        assert register(name)(component) is component
        assert table[name] is component
    finally:
        table.unregister(name)
    assert name not in table


# -- issue 34: opening a run folder imports no module it names unless the user says so --

@pytest.mark.parametrize("module", ["this", "antigravity", "test_marker_plugin"])
def test_a_run_folder_names_no_code_to_run(module, tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    marker = tmp_path / "marker"
    (tmp_path / "test_marker_plugin.py").write_text(PAYLOAD.format(marker=str(marker)))
    _record_plugins(run, ["test_marker_plugin" if module == "test_marker_plugin" else module])
    before = snapshot(run)
    result = _cli(["evaluate", str(run), "--estimator", "is-guide", "--num-samples", "3"], tmp_path, path=[tmp_path])
    assert result.returncode == 2 and result.stdout == "", result.stdout  # "this" would print the Zen of Python
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"names the plugin modules [{module!r}]" in lines[0], lines
    assert f"--import {module}" in lines[0] and "--trust-plugins" in lines[0]
    assert not marker.exists() and snapshot(run) == before
    # the user says so: imported, announced first (the marker module runs; the evaluation then goes on)
    if module == "test_marker_plugin":
        result = _cli(["evaluate", str(run), "--estimator", "is-guide", "--num-samples", "3", "--no-save",
                       "--import", module], tmp_path, path=[tmp_path])
        assert result.returncode == 0, result.stderr
        assert result.stderr.startswith(f"pyro-gmvae: importing plugin module {module} (") and marker.exists()


def test_load_run_trusts_only_what_it_is_told(tmp_path, good_run, monkeypatch):
    from pyro_gmvae.runs import load_run

    run = copy_run(good_run, tmp_path)
    marker = tmp_path / "marker"
    (tmp_path / "test_marker_plugin_api.py").write_text(PAYLOAD.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    _record_plugins(run, ["test_marker_plugin_api"])
    with pytest.raises(CheckpointError, match=r"names the plugin modules \['test_marker_plugin_api'\]"):
        load_run(run)
    assert not marker.exists() and "test_marker_plugin_api" not in sys.modules
    # an installed package's declared entry point is trusted (installing it was the decision)
    monkeypatch.setattr(plugins, "_entry_point_modules", lambda: {"test_marker_plugin_api"})
    try:
        assert load_run(run)[2].model == "gmvae" and marker.exists()
        marker.unlink()
        sys.modules.pop("test_marker_plugin_api")
        monkeypatch.setattr(plugins, "_entry_point_modules", lambda: set())
        assert load_run(run, trust_plugins=True)[2].model == "gmvae" and marker.exists()
        assert not plugins._trust_all  # trust_plugins=True held for that call only
    finally:
        sys.modules.pop("test_marker_plugin_api", None)
