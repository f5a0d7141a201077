"""Helpers of the example analysis, in their own module as in a real analysis folder.

The processor imports this module by name: on a pool it must travel with the job.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

from condorcof.kinematics import leading_index, pair_mass

P4 = ("pt", "eta", "phi", "mass")


def leading_objects(
    objects: Any, selected: Any, n: int, fields: Iterable[str]
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The first ``n`` selected objects of each event (NanoAOD is pT-ordered).

    Returns each field as a float64 ``(events, n)`` numpy array, NaN where an event has fewer
    than ``n`` selected objects, and the number of selected objects per event.
    """
    lead = leading_index(selected, n)
    return {f: lead.take(objects[f]) for f in fields}, lead.counts


def leading_pair_mass(lead: dict[str, np.ndarray]) -> np.ndarray:
    """Invariant mass of the first two objects from :func:`leading_objects`, in float64;
    NaN where either is missing."""
    return pair_mass(*(lead[f][:, 0] for f in P4), *(lead[f][:, 1] for f in P4))
