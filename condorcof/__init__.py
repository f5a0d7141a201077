"""condorcof: columnar HEP analyses on HTCondor through DAGMan, with no live scheduler."""

from __future__ import annotations

import logging

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())


def load(path: str, extra_allowed: tuple[str, ...] = ()) -> object:
    """Load a ``result.pkl`` (or partial) through the restricted unpickler."""
    from condorcof.safepickle import load_pickle

    return load_pickle(path, extra_allowed=extra_allowed)


__all__ = ["__version__", "load"]
