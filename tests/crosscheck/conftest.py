"""Cross-check fixtures.  Under CI=true a missing upstream library FAILS the test instead of skipping it."""

import os

import pytest


def _ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def upstream():
    """``upstream("spikingjelly")`` imports the upstream library (with its work-arounds) or skips/fails."""
    from refnsm.crosscheck import _upstream

    def get(name):
        try:
            return _upstream.load(name)
        except Exception as exc:  # ImportError, or the RuntimeError of a broken torchvision
            msg = f"upstream library {name!r} cannot be imported ({type(exc).__name__}: {exc}); run `make crosscheck`"
            if _ci():
                pytest.fail(msg)
            pytest.skip(msg)

    return get

