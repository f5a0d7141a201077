"""Helpers of the example analysis, in their own module as in a real analysis folder.

The processor imports this module by name: on a pool it must travel with the job.
"""

from __future__ import annotations

from typing import Any

import awkward as ak
import numpy as np


def as_float(values: Any) -> np.ndarray:
    """A per-event quantity as float64 numpy, with missing values (None) as NaN."""
    return ak.to_numpy(ak.fill_none(values, np.nan)).astype(np.float64)


def leading_two(objects: Any) -> tuple[Any, Any]:
    """The first and second object of each event (None where absent); NanoAOD is pT-ordered."""
    padded = ak.pad_none(objects, 2, clip=True)
    return padded[:, 0], padded[:, 1]


def pair_mass(a: Any, b: Any) -> np.ndarray:
    """Invariant mass of two objects per event, in float64; NaN where either is missing."""
    pt1, eta1, phi1, m1 = (as_float(a[f]) for f in ("pt", "eta", "phi", "mass"))
    pt2, eta2, phi2, m2 = (as_float(b[f]) for f in ("pt", "eta", "phi", "mass"))
    px = pt1 * np.cos(phi1) + pt2 * np.cos(phi2)
    py = pt1 * np.sin(phi1) + pt2 * np.sin(phi2)
    pz = pt1 * np.sinh(eta1) + pt2 * np.sinh(eta2)
    e1 = np.sqrt((pt1 * np.cosh(eta1)) ** 2 + m1**2)
    e2 = np.sqrt((pt2 * np.cosh(eta2)) ** 2 + m2**2)
    m2sum = (e1 + e2) ** 2 - px**2 - py**2 - pz**2
    return np.sqrt(np.maximum(m2sum, 0.0))
