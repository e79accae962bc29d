"""What the runner and the backend adapters share: the family names of the protocol and the "not implemented"
signal (its own module, so that the adapters need not import the runner that loads them)."""

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")


class NotImplementedByBackend(Exception):
    """The backend lacks the family or the callable a case needs: the case is skipped, not failed."""
