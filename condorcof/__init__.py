"""condorcof: columnar HEP analyses on HTCondor through DAGMan, with no live scheduler."""

from __future__ import annotations

import logging
from typing import Any

__version__ = "0.1.0"

logging.getLogger(__name__).addHandler(logging.NullHandler())


def load(path: str, extra_allowed: tuple[str, ...] = ()) -> Any:
    """The processor's output stored in a ``result.pkl`` (restricted unpickler).

    Other condorcof pickles (partials) are returned whole. ``extra_allowed`` names extra
    classes (``"module.Class"``) that the pickle may contain.
    """
    from condorcof.safepickle import load_pickle

    payload = load_pickle(path, extra_allowed=extra_allowed)
    if isinstance(payload, dict) and payload.get("format") == "condorcof-result/1":
        return payload["output"]
    return payload


def load_report(path: str) -> dict[str, Any]:
    """The bookkeeping report of a result: events and chunks per dataset, skipped files."""
    from condorcof.merge import load_result

    return load_result(path)["report"]


__all__ = ["__version__", "load", "load_report"]
