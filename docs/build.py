"""Build the API reference of pyro_gmvae from its docstrings with pdoc.

    python docs/build.py [OUT]        # default OUT: docs/_build; open OUT/pyro_gmvae.html

Every module of the package gets a page; the navigation links the user guides (``guides/*.md``). Docstrings
are reStructuredText (``:param:`` fields, ``.. math::``), rendered with pdoc's restructuredtext format.
"""

import os
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def guides(out):
    """``(title, relative link)`` of each user guide, the title from its first heading."""
    found = []
    for path in sorted((REPO / "guides").glob("*.md")):
        first = next((line for line in path.read_text().splitlines() if line.startswith("# ")), path.stem)
        found.append((first.lstrip("# ").strip(), Path(os.path.relpath(path, out)).as_posix()))
    return found


def build(out=HERE / "_build"):
    """Write the reference into ``out``; returns the path of the package's page."""
    import pdoc
    import pdoc.render

    out = Path(out).resolve()
    pdoc.render.configure(docformat="restructuredtext", math=True, template_directory=HERE / "templates",
                          footer_text="pyro-gmvae API reference")
    pdoc.render.env.globals["guides"] = guides(out)
    pdoc.pdoc(*modules(), output_directory=out)
    return out / "pyro_gmvae.html"


def modules():
    """The package and every module under it, but ``__main__`` (it runs the command line when imported).
    pdoc walks the submodules of a package itself unless the package's ``__all__`` leaves them out; those
    are named here, each once (a submodule whose name is in ``__all__`` pdoc finds)."""
    import importlib
    import pkgutil

    names = ["pyro_gmvae"]

    def add(package):
        for info in pkgutil.iter_modules(package.__path__, package.__name__ + "."):
            if info.name.endswith("__main__"):
                continue
            if info.name.rsplit(".", 1)[1] not in package.__all__:
                names.append(info.name)
            if info.ispkg:
                sub = importlib.import_module(info.name)
                if hasattr(sub, "__all__"):
                    add(sub)

    import pyro_gmvae

    add(pyro_gmvae)
    return names


if __name__ == "__main__":
    print(build(*sys.argv[1:2]))
