"""The API reference (docs/build.py, pdoc) builds without warnings, has every public name of pyro_gmvae and
a page per module, and links every user guide from every page."""

import importlib.util
import re
import warnings
from pathlib import Path

import pytest

pdoc = pytest.importorskip("pdoc")

REPO = Path(__file__).resolve().parents[1]


def _build_module():
    spec = importlib.util.spec_from_file_location("docs_build", REPO / "docs" / "build.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    build = _build_module()
    out = tmp_path_factory.mktemp("docs")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        page = build.build(out)
    pdoc_dir = str(Path(pdoc.__file__).parent)
    return build, out, page, [w for w in caught if w.filename.startswith(pdoc_dir)]


def test_the_reference_builds_without_warnings(reference):
    _, _, page, pdoc_warnings = reference
    assert [str(w.message) for w in pdoc_warnings] == []
    assert page.exists()


def test_every_public_name_and_every_module_is_documented(reference):
    import pyro_gmvae

    build, out, page, _ = reference
    html = page.read_text()
    missing = [name for name in pyro_gmvae.__all__ if f'id="{name}"' not in html]
    assert missing == []
    pages = {p.relative_to(out).with_suffix("").as_posix().replace("/", ".") for p in out.rglob("*.html")}
    assert set(build.modules()) <= pages and "pyro_gmvae.estimator" in pages


def test_every_page_links_every_guide(reference):
    _, out, _, _ = reference
    guides = sorted((REPO / "guides").glob("*.md"))
    assert guides
    for page in (out / "pyro_gmvae.html", out / "pyro_gmvae" / "models" / "priors.html"):
        links = re.findall(r'href="([^"]+\.md)"', page.read_text())
        assert sorted((page.parent / link).resolve() for link in links) == [g.resolve() for g in guides]
