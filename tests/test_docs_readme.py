"""The README's first-run promises: its snippet runs and prints what the README says, with multi-hot labels;
LICENSE, CHANGELOG.md and CITATION.cff exist and agree with pyproject."""

import contextlib
import io
import re
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
VERSION = re.search(r'^version = "([^"]+)"', (ROOT / "pyproject.toml").read_text(), re.M).group(1)


def _section(title):
    start = README.index(f"## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def test_taste_snippet_prints_what_the_readme_shows_with_multi_hot_labels():
    taste = _section("A taste")
    code = re.search(r"```python\n(.*?)```", taste, re.S).group(1)
    shown = re.search(r"It prints.*?```\n(.*?)```", taste, re.S).group(1).splitlines()
    out, ns = io.StringIO(), {}
    with contextlib.redirect_stdout(out):
        exec(compile(code, "README.md", "exec"), ns)
    printed = out.getvalue().splitlines()
    assert printed[0] == shown[0]  # the loss to 6 digits: far above any CPU's last bits
    assert printed[1].startswith("gradcheck passed") and shown[1].startswith("gradcheck passed")
    labels = np.asarray(ns["labels"])
    assert set(np.unique(labels)) <= {0.0, 1.0} and (labels.sum(axis=1) > 1).any(), "labels are not multi-hot"


def test_readme_says_how_to_install_where_the_docs_are_and_the_first_call_cost():
    install = _section("Install")
    assert "pip install ./refnsm" in install and "pip install -e" in install
    assert "make docs" in install and "build/docs/html/index.html" in install
    assert "Numba cache" in README and "warmup" in README


def test_license_changelog_citation():
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    assert 'license = { text = "MIT" }' in (ROOT / "pyproject.toml").read_text()
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert f"## [{VERSION}]" in changelog and "## [Unreleased]" in changelog
    cff = (ROOT / "CITATION.cff").read_text()
    assert re.search(r"^cff-version: 1\.2\.0$", cff, re.M)
    assert re.search(rf'^version: "{re.escape(VERSION)}"$', cff, re.M)
    assert re.search(r"^license: MIT$", cff, re.M)


def test_readme_cold_start_table_is_the_measured_one():
    # the README's table is copied from the file the benchmark wrote (benchmarks/bench_cold_start.py), not typed
    results = ROOT / "benchmarks" / "results" / "cold_start.md"
    measured = [ln for ln in results.read_text().splitlines() if ln.startswith("|")]
    section = _section("First call, the Numba cache and warmup")
    shown = [ln for ln in section.splitlines() if ln.startswith("|")]
    assert len(measured) >= 7 and shown == measured
