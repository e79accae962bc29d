"""The hypothesis layer (tests/fuzz/hypothesis_layer.py) over every spec of fuzz_tables.py: drawn valid calls
(shapes incl. 0/1-sized, float32/float64, duplicates, zeros, ties, tiny/huge finite magnitudes) give a finite
result of the input dtype or a clean error naming an argument; inputs are never written.  Derandomized, a few
examples per spec here; ``REFNSM_HYPOTHESIS_PROFILE=fuzz`` (``make fuzz``) runs the longer profile."""

import pytest

import fuzz_tables as F
import hypothesis_layer as HL

TABLE = F.specs()
SPECS = [sp for name in TABLE for sp in TABLE[name] if HL._float_arrays(sp) or HL._index_arrays(sp)]


def test_every_spec_with_array_arguments_is_drawn():
    assert len(SPECS) > 100


@pytest.mark.parametrize("spec", SPECS, ids=[sp.label for sp in SPECS])
def test_drawn_calls_keep_the_contract(spec):
    HL.make_test(spec)()
