"""The built site (``make docs``) holds what the issue asks for: every public name in the API reference, every
tutorial with its figures and a notebook that runs, the check pages, the performance figure and MathJax served
locally.  Runs in ``make docs-test`` (``REFNSM_DOCS_TEST=1``); skipped otherwise, failed under CI when the site is
missing."""

import importlib
import inspect
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / "build" / "docs" / "html"
FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization", "gradcheck")


@pytest.fixture(scope="module")
def site():
    if os.environ.get("REFNSM_DOCS_TEST") != "1":
        pytest.skip("the site checks run in `make docs-test` (REFNSM_DOCS_TEST=1), after `make docs`")
    if not (SITE / "index.html").exists():
        msg = f"the site is not built ({SITE / 'index.html'} missing): run `make docs` first"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(msg)
        pytest.skip(msg)
    return SITE


def test_every_public_name_has_an_api_entry(site):
    missing = []
    for fam in FAMILIES:
        html = (site / "api" / f"{fam}.html").read_text()
        mod = importlib.import_module(f"refnsm.{fam}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if f'id="refnsm.{fam}.{name}"' not in html:
                missing.append(f"refnsm.{fam}.{name}")
    assert not missing, missing


def test_api_pages_have_math_and_examples(site):
    html = (site / "api" / "spiking.html").read_text()
    assert html.count('class="math') >= 20  # left for MathJax, which the browser test checks is typeset
    assert "Examples" in html and "&gt;&gt;&gt;" in html


def test_mathjax_is_served_locally_and_no_page_loads_a_cdn(site):
    assert (site / "_static" / "mathjax" / "tex-chtml.js").stat().st_size > 100_000
    for page in site.rglob("*.html"):
        for src in re.findall(r'<script[^>]+src="([^"]+)"', page.read_text()):
            assert not src.startswith(("http:", "https:", "//")), f"{page.relative_to(site)} loads {src}"


def test_every_tutorial_page_has_figures_and_a_notebook(site):
    pages = sorted((site / "tutorials").glob("[0-9][0-9]_*.html"))
    assert len(pages) == 7
    for page in pages:
        html = page.read_text()
        assert re.search(r'<img[^>]+src="[^"]*sphx_glr_' + page.stem + r'_\d+\.png"', html), f"{page.name}: no figure"
        assert re.search(r'href="[^"]*' + page.stem + r'\.ipynb"', html), f"{page.name}: no notebook download"
        assert "RESULT:" in html, f"{page.name}: the reproduced number is not shown"


def test_the_check_pages_and_the_performance_figure(site):
    for page in ("conventions", "crosscheck", "upstream_differences", "cuda", "performance", "contributing"):
        assert (site / f"{page}.html").exists(), page
    perf = (site / "performance.html").read_text()
    assert "benchmark_ratios.png" in perf and (site / "_images" / "benchmark_ratios.png").exists()
    assert "ratio upstream/refnsm" in perf and "Cold start" in perf


def test_a_downloaded_notebook_runs(site, tmp_path):
    # the notebook as a reader downloads it: its code cells, run in order without __file__, in quick mode
    nb = next(site.glob("_downloads/*/02_similarity_matching_pca.ipynb"))
    cells = [c for c in json.loads(nb.read_text())["cells"] if c["cell_type"] == "code"]
    code = "\n\n".join("".join(c["source"]) for c in cells)
    runner = "import sys\nns = {'__name__': '__main__'}\nexec(compile(sys.stdin.read(), 'notebook', 'exec'), ns)\n"
    env = dict(os.environ, REFNSM_QUICK="1", REFNSM_FIGURES=str(tmp_path), MPLBACKEND="Agg",
               PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", runner], input=code, capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert "RESULT:" in res.stdout
    assert (tmp_path / "02_similarity_mismatch.png").stat().st_size > 10_000
