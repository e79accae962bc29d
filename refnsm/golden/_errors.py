"""Names shared by the runner and the backends (a leaf module: no import cycle)."""

FAMILIES = ("spiking", "similarity", "hopfield", "linear", "regularization")


class NotImplementedByBackend(Exception):
    """The backend lacks the family or the callable a case needs: the case is skipped, not failed."""
