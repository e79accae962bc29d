"""pynsm's ``pynsm.util.extract_embeddings``: run a model over a data set and collect its outputs and labels."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Callable, Iterable

import numpy as np

from .. import _checks

__all__ = ["extract_embeddings"]


def extract_embeddings(model, loader: Iterable, progress: Callable | None = None) -> SimpleNamespace:
    """Embeddings of every sample of ``loader`` and their labels.

    Parameters
    ----------
    model : a circuit (anything with ``forward(x)``, or a callable)
        Called on each batch ``x``; its output is copied.  A model with ``train()``/``eval()`` and a ``training``
        flag (e.g. :class:`refnsm.linear.L0Linear`) is put in evaluation mode for the pass and restored after it,
        as pynsm does.
    loader : iterable of ``(x, label)`` batches
        Any iterable (a list, a generator, a torch ``DataLoader`` yielding arrays); the label is never given to the
        model.
    progress : callable, optional
        A ``tqdm``-like wrapper: the loop iterates over ``progress(loader)``.

    Returns
    -------
    SimpleNamespace with ``output`` (the outputs concatenated along axis 0) and ``label`` (the labels likewise).

    Examples
    --------
    >>> import numpy as np
    >>> from refnsm import similarity as sim
    >>> model = sim.SimilarityMatching(sim.Linear(3, 2, rng=0), 2)
    >>> loader = [(np.ones((4, 3)), np.array([0, 1, 0, 1])), (np.zeros((2, 3)), np.array([1, 1]))]
    >>> emb = sim.extract_embeddings(model, loader)
    >>> emb.output.shape, emb.label.tolist()
    ((6, 2), [0, 1, 0, 1, 1, 1])
    """
    run = getattr(model, "forward", model)
    if not callable(run):
        raise TypeError(f"model: expected a circuit with forward(x) or a callable, got {_checks._describe(model)}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress: expected None or a tqdm-like callable, got {_checks._describe(progress)}")
    iterable = loader if progress is None else progress(loader)
    try:
        iterator = iter(iterable)
    except TypeError:
        raise TypeError(f"loader: expected an iterable of (x, label) batches, got {_checks._describe(loader)}") from None
    toggles = all(hasattr(model, a) for a in ("train", "eval", "training"))
    was_training = bool(model.training) if toggles else False
    if toggles:
        model.eval()
    outputs, labels = [], []
    try:
        for i, batch in enumerate(iterator):
            try:
                x, label = batch
            except (TypeError, ValueError):
                raise ValueError(f"loader: batch {i} is not an (x, label) pair") from None
            outputs.append(np.array(run(np.asarray(x)), copy=True))
            labels.append(np.array(label, copy=True))
    finally:
        if toggles and was_training:
            model.train()
    if not outputs:
        raise ValueError("loader: expected at least one (x, label) batch, got none")
    return SimpleNamespace(output=np.concatenate(outputs), label=np.concatenate([np.atleast_1d(l) for l in labels]))
