"""The tutorials run as notebooks: no ``__file__`` at the top level, figures where the docs expect them."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TUTORIALS = sorted((ROOT / "tutorials").glob("[0-9][0-9]_*.py"))

# Runs a tutorial's cells the way a Jupyter kernel does: the source exec'd in a fresh namespace that has no
# ``__file__`` and whose ``__name__`` is not "__main__" (so the experiment itself is not started), then prints
# where the figures would go.
NOTEBOOK = """
import sys
src = open(sys.argv[1]).read()
ns = {"__name__": "notebook"}
exec(compile(src, "<notebook cell>", "exec"), ns)
print(ns["FIGURES"])
"""


def _figures_as_notebook(script: Path, cwd: Path, env_figures: str | None) -> Path:
    env = {k: v for k, v in os.environ.items() if k != "REFNSM_FIGURES"}
    if env_figures is not None:
        env["REFNSM_FIGURES"] = env_figures
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    res = subprocess.run([sys.executable, "-c", NOTEBOOK, str(script)], cwd=cwd, env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr[-2000:]
    return Path(res.stdout.strip().splitlines()[-1])


def test_there_are_seven_tutorials():
    assert len(TUTORIALS) == 7


@pytest.mark.parametrize("script", TUTORIALS, ids=lambda p: p.stem)
def test_tutorial_runs_without_dunder_file(script):
    # opened from tutorials/ (Jupyter's default working directory for the file) or from the repository root
    assert _figures_as_notebook(script, ROOT / "tutorials", None) == ROOT / "figures"
    assert _figures_as_notebook(script, ROOT, None) == ROOT / "figures"


def test_refnsm_figures_redirects_every_tutorial(tmp_path):
    for script in TUTORIALS:
        assert _figures_as_notebook(script, ROOT, str(tmp_path / "figs")) == tmp_path / "figs"
