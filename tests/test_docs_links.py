"""Every repository file that a docstring, a doc page or the README names exists (no links to missing files)."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# a path into the repository: one of its top-level folders, then a file name with an extension ("NN" marks a
# template such as tutorials/NN_name.py; examples/ is not a folder of refnsm, only of upstream libraries)
PATH = re.compile(r"(?<![\w/.-])((?:docs|tests|tutorials|benchmarks|figures|refnsm)/[\w/.-]*\w\.(?:md|py|png|rst|txt|json|cff))")
SOURCES = sorted((ROOT / "refnsm").rglob("*.py")) + sorted((ROOT / "docs").glob("*.md")) + [ROOT / "README.md"]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_named_file_exists(source):
    text = source.read_text()
    missing = sorted({m for m in PATH.findall(text) if "*" not in m and "NN" not in m and not (ROOT / m).exists()})
    assert not missing, f"{source.relative_to(ROOT)} names files that do not exist: {missing}"


def test_the_pattern_finds_a_missing_file(tmp_path):  # the check itself can fail
    assert PATH.findall("see ``docs/differences_linear.md``.") == ["docs/differences_linear.md"]
    assert not (ROOT / "docs/differences_linear.md").exists()
