import os
import sys

# ``python -m`` puts the working folder first on sys.path; plugins must not be imported from there implicitly
# (``cd RUN && python -m pyro_gmvae evaluate .`` would run a same-named file lying in the run folder)
if sys.path and not sys.flags.safe_path and sys.path[0] in ("", os.getcwd()):
    del sys.path[0]

from .cli import main  # noqa: E402

sys.exit(main())
