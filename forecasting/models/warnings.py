"""What a model says about itself while fitting: a warning the CLI prints and MLflow logs."""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager


class ModelWarning(UserWarning):
    """A model fitted, but something about the fit the user must know (a constant GBM, a
    tiny share of claimants above the reporting threshold, a subsample, ...)."""


@contextmanager
def collected() -> Iterator[list[str]]:
    """Collect the ModelWarnings raised inside the block (each message once, in order)."""
    found: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ModelWarning)
        yield found
    for w in caught:
        if issubclass(w.category, ModelWarning) and str(w.message) not in found:
            found.append(str(w.message))
        elif not issubclass(w.category, ModelWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)

