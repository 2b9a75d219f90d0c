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


def test_train_help_shows_the_defaults_per_dataset():
    text = _flat(_help("train"))
    assert f"default {DATASET_DEFAULTS['digits']['lr']:g} on digits" in text
    assert "training epochs after pretraining (default 30 on digits, synthetic; 100 otherwise)" in text
    for flag in ("--batch-size BATCH_SIZE minibatch size (default", "--latent-dim LATENT_DIM size of the continuous "
                 "latent z (default", "--network NETWORK network preset: vade, small, toy, conv (default"):
        assert flag in text


@pytest.mark.parametrize("command", ["train", "evaluate", "sample", "plot", "predict"])
def test_every_subcommand_takes_import_and_threads(command):
    text = _help(command)
    assert "--import MODULE" in text and "--threads N" in text
