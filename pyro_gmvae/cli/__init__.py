"""The ``pyro-gmvae`` command line: ``train``, ``evaluate``, ``sample``, ``plot`` and ``predict``.

Every flag maps onto a field of :class:`~pyro_gmvae.config.ModelConfig` or
:class:`~pyro_gmvae.config.TrainConfig`. Defaults come in three layers: the library's defaults,
then the dataset's (``DATASET_DEFAULTS``), then a ``--preset``; a flag given on the command line
always wins. The defaults live in :mod:`pyro_gmvae.defaults`, which the Python API reads too.

Every subcommand takes ``--import MODULE`` (a plugin that registers priors, guides...; see
:mod:`pyro_gmvae.plugins`) and ``--threads N``.

One module per group: :mod:`.parser` (the flags), :mod:`.train` (``train``), :mod:`.use` (``evaluate``,
``sample``, ``plot``, ``predict``); :func:`main` here dispatches.
"""

import argparse
import os
import sys
import warnings
from contextlib import contextmanager

import torch

from ..defaults import DATASET_DEFAULTS, PRESETS  # noqa: F401  (the CLI's view of the defaults)
from ..errors import CheckpointError, ConfigError, GMVAEError, StorageError, check_positive
from ..inference.distributed import report_to_launcher
from ..plugins import import_plugins, load_entry_points, trust_plugins
from ..runs import storage_error
from .parser import (DEFAULT_OUT, DESCRIPTION, EPILOG, THREADS_PER_CORE, build_parser, flag_names, in_flags,
                     unknown_arguments)
from .train import _resolve, cmd_train  # noqa: F401
from .compare import cmd_compare
from .use import cmd_evaluate, cmd_plot, cmd_predict, cmd_sample

__all__ = ["DEFAULT_OUT", "DESCRIPTION", "EPILOG", "build_parser", "cmd_evaluate", "cmd_plot", "cmd_predict",
           "cmd_sample", "cmd_train", "main"]


def _setup(args):
    """What every subcommand does first: torch's thread count, then the plugins."""
    if args.threads is not None:
        check_positive("--threads", args.threads, integer=True)
        cores = os.cpu_count() or 1
        if args.threads > THREADS_PER_CORE * cores:  # far above, OpenMP fails to create them or crashes
            raise ConfigError(f"--threads {args.threads} is more than {THREADS_PER_CORE} per CPU core of this "
                              f"machine ({cores} cores); pass --threads {cores} (or at most "
                              f"{THREADS_PER_CORE * cores})")
        torch.set_num_threads(args.threads)
    load_entry_points()
    import_plugins(args.imports, announce=True)
    trust_plugins(args.trust_plugins)


def _refuse(command, error, flags=None):
    """The one-line error and exit status 2, in the command line's words (``flags``: :func:`flag_names`); a
    process that ``--devices N`` started hands the line to the launcher, which prints each distinct one once."""
    message = " ".join(str(error).split())  # one line, whatever the message holds
    if flags and not isinstance(error, (StorageError, CheckpointError)):  # a file's own words stay (config.json)
        message = in_flags(message, flags)
    if not report_to_launcher(message):
        print(f"pyro-gmvae {command}: error: {message}", file=sys.stderr)
    return 2


@contextmanager
def _one_line_warnings(command):
    """A warning during a command as one line, ``pyro-gmvae CMD: warning: ...``, rather than Python's file, line
    number and source line (the message says what to do; where it was raised is of no use on the command line)."""
    def show(message, category, filename, lineno, file=None, line=None):
        print(f"pyro-gmvae {command}: warning: {' '.join(str(message).split())}", file=file or sys.stderr,
              flush=True)

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _early_imports(argv):
    """Import the ``--import`` modules before the parser is built, so that its help lists their components."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--import", dest="imports", action="append")
    known, _ = pre.parse_known_args(argv)
    import_plugins(known.imports, announce=True)


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        _early_imports(argv)
    except GMVAEError as e:
        print(f"pyro-gmvae: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    parser = build_parser()
    args, extras = parser.parse_known_args(argv)
    if extras:  # argparse would print the top-level usage, without a word on the flag meant
        print(f"pyro-gmvae {args.command}: error: {unknown_arguments(parser, args.command, extras)}", file=sys.stderr)
        return 2
    args.argv = argv  # train --devices N starts the same command in N processes
    command = {"train": cmd_train, "evaluate": cmd_evaluate, "sample": cmd_sample, "plot": cmd_plot,
               "predict": cmd_predict, "compare": cmd_compare}[args.command]
    try:
        with _one_line_warnings(args.command):
            _setup(args)
            return command(args)
    except GMVAEError as e:
        return _refuse(args.command, e, flag_names(parser, args.command))
    except OSError as e:  # a write the commands did not foresee (they check the folders first)
        return _refuse(args.command, storage_error(e, e.filename or "a file"))
    except KeyboardInterrupt:  # evaluate, sample, plot: nothing half written (writes are atomic)
        print(f"\npyro-gmvae {args.command}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
