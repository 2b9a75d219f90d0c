"""The help shows every default (per data set where they differ) and no reST markup."""

import pytest

from pyro_gmvae.cli import build_parser
from pyro_gmvae.defaults import DATASET_DEFAULTS


def _help(command=None):
    parser = build_parser()
    if command is None:
        return parser.format_help()
    return parser._subparsers._group_actions[0].choices[command].format_help()


def _flat(text):
    return " ".join(text.split())


def test_top_level_help_is_plain_text():
    text = _help()
    assert "``" not in text and ":class:" not in text and ":mod:" not in text
    for command in ("train", "evaluate", "sample", "plot", "predict"):
        assert command in text


@pytest.mark.parametrize("flag, field", [("--epochs", "epochs"), ("--lr", "lr"), ("--batch-size", "batch_size"),
                                         ("--latent-dim", "latent_dim"), ("--network", "network"),
                                         ("--pretrain-epochs", "pretrain_epochs")])
def test_train_help_shows_the_defaults_per_dataset(flag, field):
    entries = [_flat(chunk) for chunk in _help("train").split("\n  -")]  # one per option
    [entry] = [e for e in entries if e.startswith(f"{flag[1:]} ")]
    assert "(default" in entry, entry
    for dataset, settings in DATASET_DEFAULTS.items():
        if field in settings:  # a per-dataset default is named with its dataset, unless it is everyone's
            value = settings[field]
            shown = f"{value:g}" if isinstance(value, float) else str(value)
            assert dataset in entry or f"{shown} otherwise" in entry or f"default {shown})" in entry, (dataset, entry)


@pytest.mark.parametrize("command", ["train", "evaluate", "sample", "plot", "predict"])
def test_every_subcommand_takes_import_and_threads(command):
    text = _help(command)
    assert "--import MODULE" in text and "--threads N" in text
