"""Spike similarity and TET losses, mirroring spikingjelly 2.0.0.  See :mod:`refnsm.spiking.losses` for the math."""

from .losses import *  # noqa: F401,F403
from .losses import __all__, __doc__  # noqa: F401
