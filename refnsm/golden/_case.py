"""The golden case: a small program over a backend's family namespace, its inputs and its expected outputs.

A case is data, readable without refnsm (``case.json`` + ``arrays.npz`` once exported):

* ``name``: ``family.function.variant``, stable across suite versions (a change bumps the suite version);
* ``program``: a list of steps, each one call on the family namespace or on an object built by a previous step;
* ``inputs``: the arrays the program refers to (float inputs exactly representable in float32 when the case runs
  in both dtypes; integer inputs stay integers); every random quantity of the case is one of them;
* ``expected``: the outputs the program saves, computed by refnsm's float64 path;
* ``scales``: per output, the magnitude the error is measured against (``max|expected|``, or the scale of the
  terms that cancel in an ill-conditioned output);
* ``conditioning``: per output, the estimated relative condition number (w.r.t. that scale);
* ``tolerance``: per dtype and output, the relative tolerance the policy (:mod:`refnsm.golden._policy`) derives;
* ``dtypes``, ``difficulty`` (``basic``, ``edge``, ``hard``), ``targets`` (the porting bug the case is built to
  expose), ``tolerance_reason``, ``compat`` (None, or the upstream library whose quirk the case reproduces).

Program steps (JSON objects; ARG below is a JSON literal, a list/dict of ARGs, or a reference):

``{"call": NAME, "args": [ARG...], "kwargs": {k: ARG}, "on": OBJ?, "as": RES?, "save": {OUT: PATH}?}``
    Call ``NAME`` on the family namespace (or on the object ``OBJ``), keep the result as ``RES``, and record the
    outputs ``OUT`` found at ``PATH`` inside the result (a list of steps: an int indexes, a string is an attribute
    name or, for a mapping, a key; ``[]`` is the result itself).  A saved array is the value at that step (the
    runner copies it: a later in-place update, e.g. an optimizer step, does not change it).
``{"new": NAME, "args": [...], "kwargs": {...}, "as": OBJ}``
    Build an object: call the class (or factory) ``NAME`` of the family namespace.
``{"get": ATTR, "on": OBJ, "as": RES?, "save": {...}?}``
    Read an attribute of an object (e.g. ``params`` or ``grads``).

References inside ARGs: ``{"input": "x"}`` (an input array, in the run's dtype if it is a float array; the
backend must not write into it), ``{"copy": "x"}`` (a fresh copy of that array, which the callee may update in
place: the parameters handed to an iteration optimizer; added in suite 1.4.0),
``{"result": "r", "path": [...]}`` (part of an earlier result), ``{"object": "m"}`` (an object built earlier),
``{"dtype": "run"}`` (the run's dtype as a NumPy dtype, for constructors that take ``dtype=``),
``{"float": "inf"}`` / ``{"float": "-inf"}`` (JSON has no infinity).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

DTYPES = ("float64", "float32")
DIFFICULTIES = ("basic", "edge", "hard")


@dataclass
class Case:
    name: str
    program: list
    inputs: dict
    expected: dict = field(default_factory=dict)
    dtypes: tuple = DTYPES
    difficulty: str = "basic"
    targets: str = ""
    scales: dict = field(default_factory=dict)
    conditioning: dict = field(default_factory=dict)
    tolerance: dict = field(default_factory=dict)
    tolerance_reason: str = ""
    compat: str | None = None
    #: names of float inputs the conditioning estimate must not perturb (ties and kinks held exactly)
    hold: tuple = ()
    #: conditioning overrides {output: kappa} with the reason in tolerance_reason
    kappa: dict = field(default_factory=dict)
    #: declared term scales {output: float} for outputs whose terms cancel
    term_scale: dict = field(default_factory=dict)

    @property
    def family(self) -> str:
        return self.name.split(".")[0]

    @property
    def function(self) -> str:
        return self.name.split(".")[1]

    @property
    def variant(self) -> str:
        return self.name.split(".", 2)[2]

    def outputs(self) -> list:
        outs = []
        for step in self.program:
            outs.extend(step.get("save", {}))
        return outs

    def metadata(self) -> dict:
        """The JSON-serialisable part of the case (``case.json``); the arrays go to ``arrays.npz``."""
        return {
            "name": self.name,
            "family": self.family,
            "function": self.function,
            "variant": self.variant,
            "dtypes": list(self.dtypes),
            "difficulty": self.difficulty,
            "targets": self.targets,
            "compat": self.compat,
            "program": self.program,
            "inputs": {k: {"dtype": str(v.dtype), "shape": list(v.shape)} for k, v in self.inputs.items()},
            "outputs": {k: {"shape": list(np.shape(self.expected[k])), "scale": self.scales.get(k),
                            "conditioning": self.conditioning.get(k)} for k in self.outputs()},
            "tolerance": self.tolerance,
            "tolerance_reason": self.tolerance_reason,
        }


def f32exact(a) -> np.ndarray:
    """``a`` rounded to the nearest float32 and held in float64: the same number in both dtypes."""
    return np.asarray(a, dtype=np.float64).astype(np.float32).astype(np.float64)


def inp(name: str) -> dict:
    return {"input": name}


def res(name: str, *path) -> dict:
    return {"result": name, "path": list(path)}


def obj(name: str) -> dict:
    return {"object": name}


RUN_DTYPE = {"dtype": "run"}
INF = {"float": "inf"}
NEG_INF = {"float": "-inf"}


def call(name: str, *args, on=None, save=None, as_=None, **kwargs) -> dict:
    step: dict[str, Any] = {"call": name, "args": list(args), "kwargs": kwargs}
    if on is not None:
        step["on"] = on
    if as_ is not None:
        step["as"] = as_
    if save is not None:
        step["save"] = save
    return step


def new(name: str, *args, as_: str, **kwargs) -> dict:
    return {"new": name, "args": list(args), "kwargs": kwargs, "as": as_}


def get(attr: str, on: str, save=None, as_=None) -> dict:
    step: dict[str, Any] = {"get": attr, "on": on}
    if save is not None:
        step["save"] = save
    if as_ is not None:
        step["as"] = as_
    return step
