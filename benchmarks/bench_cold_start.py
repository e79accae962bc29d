"""Cold start: each family's first call in a fresh process with an EMPTY Numba cache, then with the cache filled.

For every family a new Python process gets its own empty ``NUMBA_CACHE_DIR``, imports the family and times its
representative call (value + gradient) in float64, then the same call in float32 (a new signature compiles
again).  A second process with the same, now filled, cache times the same calls: that is what every later
session, tutorial or test run pays after ``python -m refnsm warmup``.  Finally ``python -m refnsm warmup`` itself
is timed from an empty cache.  The goal (issue 15): no family's first call above 2 s with an empty cache.

Run: ``python benchmarks/bench_cold_start.py`` (part of ``make bench``; needs no upstream library).  Writes
``benchmarks/results/cold_start.md`` unless ``REFNSM_QUICK=1``.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _harness import machine_info, quick_mode  # noqa: E402

GOAL_S = 2.0
LOAD0 = 0.0

# family -> (what is called, code run with `dt` bound to the dtype); each builds tiny inputs
CALLS = {
    "spiking": ("spike_similar_loss + _vjp (linear/mse)", """
from refnsm import spiking as sp
s = (np.random.default_rng(0).random((8, 10, 20)) < 0.3).astype(dt); lab = np.eye(4, dtype=dt)[[0, 1, 2, 3] * 2]
sp.spike_similar_loss(s, lab, "linear", "mse"); sp.spike_similar_loss_vjp(None, s, lab, "linear", "mse")
"""),
    "similarity": ("SimilarityMatching(Linear).train_step", """
from refnsm import similarity as sim
x = np.random.default_rng(0).standard_normal((16, 5)).astype(dt)
sim.SimilarityMatching(sim.Linear(5, 3, rng=0, dtype=dt), 3).train_step(x, lr=0.01)
"""),
    "hopfield": ("retrieve + retrieve_vjp + delta_update", """
from refnsm import hopfield as hp
r = np.random.default_rng(0); W = r.standard_normal((16, 8)).astype(dt); X = r.standard_normal((4, 16)).astype(dt)
out = hp.retrieve(X, W, 4.0); hp.retrieve_vjp(np.ones_like(X), X, W, 4.0); hp.delta_update(X, out.outputs, out.memory_weights)
"""),
    "linear": ("SpectralLinear forward + backward", """
from refnsm import linear as L
m = L.SpectralLinear(6, 6, dtype=dt, rng=0); y = m.forward(np.ones((3, 6), dt)); m.backward(np.ones_like(y))
"""),
    "regularization": ("DaleLawL2 forward + backward", """
from refnsm import regularization as R
w = np.random.default_rng(0).standard_normal((8, 8)).astype(dt)
reg = R.DaleLawL2({"W": w}, alpha=0.5, rng=0); reg.forward(); reg.backward()
"""),
}

PROBE = """
import json, sys, time
t0 = time.perf_counter()
import numpy as np
imports, _, calls = sys.argv[1].strip().partition(chr(10))
ns = {"np": np}
t = time.perf_counter()
exec(imports, ns)  # the family module and numba: import time, not compilation
out = {"import": time.perf_counter() - t}
for dt in ("float64", "float32"):
    ns["dt"] = np.dtype(dt)
    t = time.perf_counter()
    exec(calls, ns)
    out[dt] = time.perf_counter() - t
print(json.dumps(out))
"""


def _run(code: str, cache: str) -> dict:
    env = dict(os.environ, NUMBA_CACHE_DIR=cache, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    res = subprocess.run([sys.executable, "-c", PROBE, code], env=env, capture_output=True, text=True, cwd=ROOT)
    if res.returncode:
        raise RuntimeError(res.stderr[-3000:])
    return json.loads(res.stdout.strip().splitlines()[-1])


def _fmt(s: float) -> str:
    return f"{s:.2f} s" if s >= 0.1 else f"{s * 1e3:.0f} ms"


def main():
    global LOAD0
    LOAD0 = os.getloadavg()[0]
    rows = []
    for fam, (what, code) in CALLS.items():
        with tempfile.TemporaryDirectory(prefix="refnsm-cold-") as cache:
            cold = _run(code, cache)
            warm = _run(code, cache)
        met = "yes" if cold["float64"] <= GOAL_S else "no"
        rows.append(f"| {fam} | {what} | {_fmt(cold['import'])} | {_fmt(cold['float64'])} | {_fmt(cold['float32'])} "
                    f"| {_fmt(warm['float64'])} | {_fmt(warm['float32'])} | {met} |")
        print(rows[-1], flush=True)
    with tempfile.TemporaryDirectory(prefix="refnsm-cold-") as cache:
        env = dict(os.environ, NUMBA_CACHE_DIR=cache,
                   PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
        t = time.perf_counter()
        subprocess.run([sys.executable, "-m", "refnsm", "warmup", "--quiet"], env=env, check=True, cwd=ROOT)
        t_warmup = time.perf_counter() - t
    text = (f"## Cold start (first call with an empty Numba cache)\n\nMachine: {machine_info()}.  "
            f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} by `benchmarks/bench_cold_start.py`.\n\n"
            "| family | first call | import (numba + family) | empty cache, float64 | then float32 | cached, float64 | "
            f"cached, float32 | float64 <= {GOAL_S:g} s |\n|---|---|---|---|---|---|---|---|\n" + "\n".join(rows) + "\n\n"
            f"`python -m refnsm warmup` (every kernel, both dtypes) from an empty cache: {_fmt(t_warmup)}.  "
            "Each row is a fresh process with its own empty cache (compilation), then a second process with that "
            "cache filled (loading); the import is timed apart.  The machine's other load (uptime's 1-minute "
            f"load average at the start: {LOAD0:.1f} on {os.cpu_count()} cores) adds to every number.\n")
    print(text)
    if not quick_mode():
        (ROOT / "benchmarks" / "results").mkdir(exist_ok=True)
        (ROOT / "benchmarks" / "results" / "cold_start.md").write_text(text)


if __name__ == "__main__":
    main()
