"""spikingjelly 2.0.0 against refnsm.spiking in float64: values and gradients within 1e-10."""

import pytest

from refnsm.crosscheck import spiking as adapter


@pytest.mark.parametrize("case", adapter.cases(), ids=lambda c: c.name)
def test_crosscheck(case, upstream):
    upstream(adapter.UPSTREAM)
    row = case.run()
    assert row.passed, str(row)
