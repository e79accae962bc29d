"""Case generators, one module per family (the source of truth of the suite: the shipped data is their output)."""

from importlib import import_module

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")


def generate(families=FAMILIES) -> list:
    """Every case of ``families``, finalized (expected values from refnsm's float64 path)."""
    from .._build import finalize

    out = []
    for fam in families:
        mod = import_module(f"{__name__}.{fam}")
        out += [finalize(c) for c in mod.cases()]
    names = [c.name for c in out]
    dup = {n for n in names if names.count(n) > 1}
    if dup:
        raise RuntimeError(f"duplicate golden case names: {sorted(dup)}")
    return out
