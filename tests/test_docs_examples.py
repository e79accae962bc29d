"""Every public function and class of every family has an ``Examples`` section, and it runs (doctest).

The examples print rounded values, shapes and properties (never last bits), so they hold on any CPU."""

import doctest
import importlib
import inspect

import pytest

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization", "gradcheck")


def _public():
    seen = {}
    for fam in FAMILIES:
        mod = importlib.import_module(f"refnsm.{fam}")
        for name in mod.__all__:
            obj = getattr(mod, name)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or id(obj) in seen:
                continue  # data (KERNELS, maps, ...) and aliases (IdentityGradReLU) are documented with their target
            seen[id(obj)] = (f"refnsm.{fam}.{name}", obj)
    return list(seen.values())


PUBLIC = _public()


def test_every_family_is_covered():
    assert len(PUBLIC) >= 110
    assert {n.split(".")[1] for n, _ in PUBLIC} == set(FAMILIES)


@pytest.mark.parametrize("name,obj", PUBLIC, ids=[n for n, _ in PUBLIC])
def test_example_runs(name, obj):
    doc = inspect.getdoc(obj) or ""
    assert "\nExamples\n--------\n" in doc, f"{name} has no Examples section"
    test = doctest.DocTestParser().get_doctest(doc, {}, name, inspect.getsourcefile(obj), 0)
    assert test.examples, f"{name}: its Examples section has no >>> lines"
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    out = []
    runner.run(test, out=out.append)
    assert runner.failures == 0, "".join(out)
