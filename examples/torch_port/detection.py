"""Plant each bug of torch_backend.BUGS in turn and print which golden cases catch it (a markdown table).

    PYTHONPATH=. .venv-peers/bin/python examples/torch_port/detection.py
"""

import importlib.util
from pathlib import Path

import refnsm.golden as G

spec = importlib.util.spec_from_file_location("torch_port", Path(__file__).with_name("torch_backend.py"))
port = importlib.util.module_from_spec(spec)
spec.loader.exec_module(port)

clean = G.verify(port.make())
print(f"clean port: {clean.summary()}\n")
print("| planted bug | caught | failing cases (float64 / float32) | first failing case |")
print("|---|---|---|---|")
caught = 0
for bug, what in port.BUGS.items():
    rep = G.verify(port.make([bug]))
    f = rep.failures()
    n64 = sum(r.dtype == "float64" for r in f)
    n32 = sum(r.dtype == "float32" for r in f)
    caught += bool(f)
    print(f"| {what} | {'yes' if f else 'NO'} | {n64} / {n32} | `{f[0].name}` |" if f else f"| {what} | NO | 0 / 0 | |")
print(f"\ndetection rate: {caught}/{len(port.BUGS)}")
