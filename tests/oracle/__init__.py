"""The extended-precision oracle of refnsm (issue 12) and the accuracy ledger built on it.

``measure`` defines the error measure; one module per family (``spiking``, ``hopfield``, ``regularization``,
``linear``, ``similarity``) holds the exact value and VJP of each public function, written as plainly as the
math, together with the scale of the terms that form each result; ``ledger`` runs the sweep and writes
``docs/accuracy.md``.  ``test_oracle_fast.py`` is the subset that ``make test`` runs.
"""
