"""Sphinx configuration of refnsm's documentation site (``make docs``; builds offline, warnings are errors).

* API reference: numpydoc docstrings through autodoc (``docs/api/``), math by MathJax 3 served from the
  ``sphinx-mathjax-offline`` package (no CDN).
* Tutorials: ``tutorials/*.py`` converted to sphinx-gallery scripts (``docs/_ext/refnsm_gallery.py``) and run in
  quick mode; their figures are picked up from ``$REFNSM_FIGURES``; each page downloads as a notebook.
* Pages: the Markdown files of ``docs/`` through MyST; the performance figure is drawn from
  ``benchmarks/results/*.md`` (``docs/_ext/refnsm_perf.py``).
* intersphinx is opt-in (``REFNSM_DOCS_INTERSPHINX=1``): it needs the network.
"""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
BUILD = Path(os.environ.get("REFNSM_DOCS_BUILD", ROOT / "build" / "docs"))
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import refnsm  # noqa: E402
import refnsm_gallery  # noqa: E402
import refnsm_perf  # noqa: E402

project = "refnsm"
author = "the refnsm contributors"
copyright = "2026, the refnsm contributors"
release = version = refnsm.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
    "sphinx-mathjax-offline",
]
if os.environ.get("REFNSM_DOCS_INTERSPHINX") == "1":
    extensions.append("sphinx.ext.intersphinx")
    intersphinx_mapping = {"python": ("https://docs.python.org/3", None),
                           "numpy": ("https://numpy.org/doc/stable", None)}

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
exclude_patterns = ["_build", "_generated/**", "**.ipynb_checkpoints", "tutorials/*.md5", "tutorials/*.codeobj.json",
                    "tutorials/*.py", "tutorials/*.zip", "tutorials/sg_execution_times.rst", "sg_execution_times.rst", "README.md"]
root_doc = "index"

# --- autodoc + numpydoc
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "none"  # the numpydoc Parameters sections say the types
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_xref_param_type = False

# --- MyST (the Markdown pages)
myst_enable_extensions = ["dollarmath", "amsmath"]
myst_heading_anchors = 3

# --- the tutorials gallery
FIGURES = BUILD / "figures"
os.environ["REFNSM_FIGURES"] = str(FIGURES)  # the tutorials write here, not into the committed figures/
os.environ.setdefault("REFNSM_QUICK", "1")  # quick mode keeps the build fast (REFNSM_QUICK=0 for full runs)
os.environ.setdefault("MPLBACKEND", "Agg")
GALLERY_SRC = BUILD / "gallery_src"
refnsm_gallery.convert_all(ROOT / "tutorials", GALLERY_SRC)
FIGURES.mkdir(parents=True, exist_ok=True)
sphinx_gallery_conf = {
    "examples_dirs": [str(GALLERY_SRC)],
    "gallery_dirs": ["tutorials"],
    "filename_pattern": r"/\d\d_",
    "image_scrapers": (refnsm_gallery.FigureScraper(FIGURES),),
    "download_all_examples": False,
    "remove_config_comments": True,
    "min_reported_time": 1e9,
    "show_memory": False,
    "plot_gallery": os.environ.get("REFNSM_DOCS_RUN_TUTORIALS", "True"),
    "capture_repr": (),
    "first_notebook_cell": None,
    "within_subsection_order": "FileNameSortKey",
    "abort_on_example_error": True,
}

# --- the performance figure, from the last benchmark results
GENERATED = DOCS / "_generated"
GENERATED.mkdir(exist_ok=True)
refnsm_perf.draw(ROOT / "benchmarks" / "results", GENERATED / "benchmark_ratios.png")
_tables = "\n".join(p.read_text().strip() + "\n" for p in sorted((ROOT / "benchmarks" / "results").glob("*.md"))
                     if p.stem != "cold_start")  # the cold start has its own section
if not (GENERATED / "benchmark_tables.md").exists() or (GENERATED / "benchmark_tables.md").read_text() != _tables:
    (GENERATED / "benchmark_tables.md").write_text(_tables)

# --- the "how refnsm is checked" pages: the golden-suite, accuracy and reliability pages join once they exist in docs/
CHECK_PAGES = ["crosscheck", "upstream_differences", "performance", "cuda"]
CHECK_PAGES += sorted(p.stem for p in DOCS.glob("*.md") if p.stem.startswith(("golden", "accuracy", "reliability")))
CHECK_PAGES += ["contributing"]
_toc = ".. toctree::\n   :maxdepth: 1\n   :caption: How refnsm is checked\n\n" + "".join(f"   /{p}\n" for p in CHECK_PAGES)
if not (GENERATED / "checks_toctree.rst.inc").exists() or (GENERATED / "checks_toctree.rst.inc").read_text() != _toc:
    (GENERATED / "checks_toctree.rst.inc").write_text(_toc)

# --- HTML
html_theme = "pydata_sphinx_theme"
html_title = f"refnsm {release}"
# No static files of our own (an empty _static/ would not survive a clone, and sphinx -W fails on a missing path);
# MathJax is copied in by sphinx-mathjax-offline.
html_static_path = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
    "secondary_sidebar_items": ["page-toc"],
}
html_show_sourcelink = False
html_last_updated_fmt = None
mathjax_path = "mathjax/tex-chtml.js"  # served from the build's _static/mathjax (sphinx-mathjax-offline), no CDN
