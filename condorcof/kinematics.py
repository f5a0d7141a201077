"""Fast kinematics on flat arrays, always computed in float64.

Every function takes numpy arrays or awkward arrays. One value per event (numpy, or a 1-d
awkward array whose missing values become NaN) gives a numpy result; jagged awkward inputs are
broadcast against each other, computed on their flat buffers and returned jagged. Nothing here
builds vector records, which is what makes it fast; see ``leading`` for the usual entry point::

    pt, eta, phi, mass = (leading(events.Muon[f], 2) for f in ("pt", "eta", "phi", "mass"))
    mll = pair_mass(pt[:, 0], eta[:, 0], phi[:, 0], mass[:, 0],
                    pt[:, 1], eta[:, 1], phi[:, 1], mass[:, 1])  # NaN if < 2 muons

and ``leading_index`` for the first objects that pass a selection, without masking::

    muons = events.Muon
    lead = leading_index((muons.pt > 20) & (abs(muons.eta) < 2.4), 2)
    pt, eta, phi, mass = (lead.take(muons[f]) for f in ("pt", "eta", "phi", "mass"))

``benchmarks/kinematics_bench.py`` measures these against vector on awkward records.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import awkward as ak
import numpy as np

ArrayLike = Any  # numpy array, awkward array or scalar

_BLOCK = 1 << 16  # elements per block in pair_mass (14 float64 rows of scratch)
_TWO_PI = 2.0 * math.pi
# sin(h)/h as a polynomial in u = h^2 on [0, (pi/2)^2], highest power first: a degree-7
# Chebyshev least-squares fit; sin(h)^2 = u * p(u)^2 is then within 1.2e-15 of np.sin(h)**2.
_SINC_COEFFS = (
    -7.371187582387762e-13,
    1.604791675795706e-10,
    -2.5051874052980066e-08,
    2.7557316480507586e-06,
    -0.00019841269823675454,
    0.008333333333276537,
    -0.16666666666665914,
    0.9999999999999998,
)


def _numpy(x: ArrayLike, dtype: Any = np.float64) -> np.ndarray:
    """One value per event as a numpy array (awkward None becomes NaN); ``dtype=None`` keeps
    float32 and float64 as they are (for code that converts block by block)."""
    if isinstance(x, ak.Array):
        x = ak.to_numpy(ak.fill_none(x, np.nan) if x.layout.is_option else x)
    x = np.asarray(x)
    if dtype is None and x.dtype in (np.float32, np.float64):
        return x
    return np.asarray(x, dtype=dtype or np.float64)


def _elementwise(func: Callable[..., np.ndarray], *args: ArrayLike, dtype: Any = np.float64):
    """Apply ``func`` to flat numpy versions of ``args``; keep jagged structure."""
    jagged = [a for a in args if isinstance(a, ak.Array) and a.ndim > 1]
    if not jagged:
        return func(*(_numpy(a, dtype) for a in args))
    args = ak.broadcast_arrays(*args)
    if args[0].ndim != 2:
        raise ValueError("kinematics functions take at most one level of jaggedness")
    counts = ak.num(args[0], axis=1)
    flat = [_numpy(ak.flatten(a, axis=1), dtype) for a in args]
    return ak.unflatten(func(*flat), counts)


def _offsets_values(array: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """int64 offsets (from 0) and flat values of a jagged (one list level) array.

    Reads the layout's buffers directly, without awkward operations, for the layouts that
    reading and masking give: a list-offset or list array over numbers, or over numbers picked
    by an index (what masking a collection of records leaves in each field).
    """
    array = ak.Array(array) if not isinstance(array, ak.Array) else array
    layout = array.layout
    if isinstance(layout, ak.contents.ListArray):
        layout = layout.to_ListOffsetArray64(True)
    if isinstance(layout, ak.contents.ListOffsetArray):
        offsets = np.asarray(layout.offsets.data, dtype=np.int64)
        content = layout.content
        if isinstance(content, ak.contents.NumpyArray) and content.data.ndim == 1:
            values = np.asarray(content.data)[offsets[0] : offsets[-1]]
            return (offsets - offsets[0] if offsets[0] else offsets), values
        if (
            isinstance(content, ak.contents.IndexedArray)
            and isinstance(content.content, ak.contents.NumpyArray)
            and content.content.data.ndim == 1
        ):
            index = np.asarray(content.index.data)[offsets[0] : offsets[-1]]
            values = np.asarray(content.content.data)[index]
            return (offsets - offsets[0] if offsets[0] else offsets), values
    counts = ak.to_numpy(ak.num(array, axis=1))
    values = ak.to_numpy(ak.flatten(array, axis=1))
    offsets = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    return offsets, values


@dataclass(frozen=True)
class Leading:
    """The first ``n`` selected objects of each event, by position (see :func:`leading_index`)."""

    index: np.ndarray  # (events, n) int64 positions in the flat values, -1 where absent
    counts: np.ndarray  # selected objects per event
    offsets: np.ndarray  # the lists of the mask, to check the arrays taken from

    @cached_property
    def _gather(self) -> np.ndarray:
        """Positions clipped to 0, so that a gather never fails (absent ones are fixed after)."""
        return np.maximum(self.index, 0)

    @cached_property
    def _nan_scale(self) -> np.ndarray:
        """1.0 where an object is present, NaN where not: multiplying by it puts NaN in the
        absent places exactly (x * 1.0 == x), much faster than a masked write in numpy."""
        scale = np.ones(self.index.shape, dtype=np.float64, order="F")
        np.copyto(scale, np.nan, where=self.index < 0)
        return scale

    def take(self, values: ArrayLike, fill: float = np.nan, dtype: Any = np.float64) -> np.ndarray:
        """``values`` (same lists as the mask) at the positions, ``fill`` where absent, as a
        ``(events, n)`` array of ``dtype`` with contiguous columns."""
        offsets, flat = _offsets_values(values)
        if offsets is not self.offsets and not np.array_equal(offsets, self.offsets):
            raise ValueError("take: the values do not have the same lists as the mask")
        return self._take_flat(flat, fill, dtype)

    def _take_flat(self, flat: np.ndarray, fill: float, dtype: Any) -> np.ndarray:
        out = np.empty(self.index.shape, dtype=dtype, order="F")
        if not len(flat):
            out.fill(fill)
            return out
        by_nan = out.dtype.kind == "f" and isinstance(fill, float) and math.isnan(fill)
        for k in range(self.index.shape[1]):
            column = out[:, k]
            if flat.dtype == column.dtype:
                flat.take(self._gather[:, k], out=column, mode="clip")
            else:
                column[:] = flat.take(self._gather[:, k], mode="clip")
            if by_nan:
                column *= self._nan_scale[:, k]
            else:
                np.putmask(column, self.index[:, k] < 0, fill)
        return out


def leading_index(mask: ArrayLike, n: int) -> Leading:
    """Where the first ``n`` selected objects of each event are, to :meth:`Leading.take` fields.

    ``mask`` is a jagged boolean array, e.g. ``(muons.pt > 20) & (abs(muons.eta) < 2.4)``::

        lead = leading_index(good, 2)
        pt, eta = lead.take(muons.pt), lead.take(muons.eta)   # (events, 2) float64, NaN-padded
        two = lead.counts >= 2

    No awkward masking or padding is involved: the selected positions are in event order, so
    the k-th selected object of event e is ``flatnonzero(mask)[selected_before_e + k]``.
    """
    offsets, selected = _offsets_values(mask)
    selected = np.asarray(selected, dtype=bool)
    # running count of selected objects; summing uint8 into int32 is many times faster in
    # numpy than summing bool into int64
    running = np.empty(len(selected) + 1, dtype=np.int32 if len(selected) < 2**31 else np.int64)
    running[0] = 0
    np.cumsum(selected.view(np.uint8), dtype=running.dtype, out=running[1:])
    before = running[offsets[:-1]]
    counts = (running[offsets[1:]] - before).astype(np.int64)
    chosen = np.flatnonzero(selected)
    index = np.empty((len(counts), n), dtype=np.int64, order="F")
    for k in range(n):
        column = index[:, k]
        if len(chosen):
            chosen.take(before + k, out=column, mode="clip")  # clipped where absent, then -1:
            column += 1  # (position + 1) * present - 1, without a (slow) masked write
            column *= (counts > k).view(np.int8)
            column -= 1
        else:
            column.fill(-1)
    return Leading(index, counts, offsets)


def leading(
    array: ArrayLike,
    n: int,
    fill: float = np.nan,
    dtype: Any = np.float64,
    mask: ArrayLike | None = None,
) -> np.ndarray:
    """The first ``n`` values of each event as a ``(len(array), n)`` numpy array.

    Events with fewer than ``n`` values are padded with ``fill`` (NaN by default, so any
    kinematics computed from a missing object is NaN). Columns are contiguous (Fortran order),
    so ``out[:, 0]`` is fast. Sort first if "leading" should mean highest pt.
    ``array`` is a jagged awkward array (``events.Muon.pt``) or a 2-d numpy array. With
    ``mask`` (a jagged boolean array like ``array``), the first ``n`` values where it is true:
    ``leading(muons.pt, 2, mask=muons.pt > 20)`` equals ``leading(muons.pt[muons.pt > 20], 2)``
    without building the masked array. For several fields, :func:`leading_index` once and
    :meth:`Leading.take` per field.
    """
    if mask is not None:
        return leading_index(mask, n).take(array, fill, dtype)
    if isinstance(array, np.ndarray) and array.ndim == 2:
        out = np.full((len(array), n), fill, dtype=dtype, order="F")
        k = min(n, array.shape[1])
        out[:, :k] = array[:, :k]
        return out
    offsets, values = _offsets_values(array)
    size = len(offsets) - 1
    padded = np.empty(len(values) + 1, dtype=dtype)  # values, then the fill value
    padded[:-1] = values
    padded[-1] = fill
    out = np.empty((size, n), dtype=dtype, order="F")
    counts = np.subtract(offsets[1:], offsets[:-1])
    index = np.empty(size, dtype=np.int64)
    has = np.empty(size, dtype=bool)
    for i in range(n):
        # position of value i of each event, or of the fill value (avoids slow masked writes)
        np.greater(counts, i, out=has)
        np.subtract(offsets[:-1], len(values) - i, out=index)
        index *= has
        index += len(values)
        padded.take(index, out=out[:, i], mode="clip")  # "clip": no buffered copy
    return out


def _two_cos_delta(phi1: np.ndarray, phi2: np.ndarray, out: np.ndarray, tmp: np.ndarray) -> None:
    """``out = 2 cos(phi1 - phi2)`` to float64 precision by a polynomial (np.cos is slow)."""
    np.subtract(phi1, phi2, out=out)
    np.multiply(out, 1.0 / _TWO_PI, out=tmp)
    np.rint(tmp, out=tmp)
    tmp *= math.pi
    out *= 0.5
    out -= tmp  # h = dphi / 2, wrapped into [-pi/2, pi/2]
    np.multiply(out, out, out=out)  # u = h^2
    tmp.fill(_SINC_COEFFS[0])
    for c in _SINC_COEFFS[1:]:
        tmp *= out
        tmp += c  # tmp = sin(h) / h
    tmp *= tmp
    out *= tmp  # sin(h)^2
    out *= -4.0
    out += 2.0  # 2 cos(dphi) = 2 - 4 sin(dphi/2)^2


def _pair_mass_block(args: list[np.ndarray], out: np.ndarray, s: np.ndarray) -> None:
    """Invariant mass of one block of float64 inputs, in place; ``s`` holds 8 scratch rows.

    With x = exp(eta): 2 pz = pt (x - 1/x), 2 |p| = pt (x + 1/x), 2 E = sqrt((2|p|)^2 + 4 m^2),
    and m^2 = m1^2 + m2^2 + ((2E1)(2E2) - (2pz1)(2pz2)) / 2 - pt1 pt2 (2 cos(dphi)).
    """
    pt1, eta1, phi1, m1, pt2, eta2, phi2, m2 = args
    e1, z1, e2, z2, a, b = s[:6]
    for eta, pt, m, e, z in ((eta1, pt1, m1, e1, z1), (eta2, pt2, m2, e2, z2)):
        np.exp(eta, out=a)
        np.reciprocal(a, out=b)
        np.subtract(a, b, out=z)
        z *= pt
        a += b
        a *= pt
        a *= a
        m *= m  # the block's own copy of m becomes m^2
        np.multiply(m, 4.0, out=b)
        a += b
        np.sqrt(a, out=e)
    np.multiply(e1, e2, out=out)
    np.multiply(z1, z2, out=b)
    out -= b
    out *= 0.5
    _two_cos_delta(phi1, phi2, a, b)
    a *= pt1
    a *= pt2
    out -= a
    out += m1
    out += m2
    np.maximum(out, 0.0, out=out)  # rounding can give a tiny negative m^2
    np.sqrt(out, out=out)


def _pair_mass_flat(*args: np.ndarray) -> np.ndarray:
    """Block by block: inputs are copied to float64 rows that stay in cache with the scratch."""
    args = np.broadcast_arrays(*args)
    size = args[0].shape[0] if args[0].ndim else 1
    args = [a.reshape(size) for a in args]
    out = np.empty(size, dtype=np.float64)
    rows = np.empty((14, min(size, _BLOCK)), dtype=np.float64)
    for start in range(0, size, _BLOCK):
        stop = min(start + _BLOCK, size)
        block = rows[:, : stop - start]
        for row, arg in zip(block[:8], args, strict=True):
            row[:] = arg[start:stop]
        _pair_mass_block(list(block[:8]), out[start:stop], block[8:])
    return out


def pair_mass(
    pt1: ArrayLike,
    eta1: ArrayLike,
    phi1: ArrayLike,
    m1: ArrayLike,
    pt2: ArrayLike,
    eta2: ArrayLike,
    phi2: ArrayLike,
    m2: ArrayLike,
) -> ArrayLike:
    """Invariant mass of two objects given as (pt, eta, phi, mass), in float64.

    m^2 = m1^2 + m2^2 + 2 (E1 E2 - pz1 pz2 - pt1 pt2 cos(dphi)), clipped at 0.
    Masses may be scalars (e.g. 0.10566 for muons). NaN inputs give NaN.
    """
    args = (pt1, eta1, phi1, m1, pt2, eta2, phi2, m2)
    return _elementwise(_pair_mass_flat, *args, dtype=None)


def _delta_phi_flat(phi1: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    out = np.subtract(phi1, phi2)
    out -= _TWO_PI * np.rint(out * (1.0 / _TWO_PI))
    return out


def delta_phi(phi1: ArrayLike, phi2: ArrayLike) -> ArrayLike:
    """``phi1 - phi2`` wrapped into [-pi, pi], in float64 (same sign as vector's deltaphi)."""
    return _elementwise(_delta_phi_flat, phi1, phi2)


def delta_eta(eta1: ArrayLike, eta2: ArrayLike) -> ArrayLike:
    """``eta1 - eta2`` in float64."""
    return _elementwise(np.subtract, eta1, eta2)


def _delta_r_flat(eta1: np.ndarray, phi1: np.ndarray, eta2: np.ndarray, phi2: np.ndarray):
    return np.hypot(eta1 - eta2, _delta_phi_flat(phi1, phi2))


def delta_r(eta1: ArrayLike, phi1: ArrayLike, eta2: ArrayLike, phi2: ArrayLike) -> ArrayLike:
    """sqrt(deta^2 + dphi^2) in float64."""
    return _elementwise(_delta_r_flat, eta1, phi1, eta2, phi2)


def sum_pt(pt: ArrayLike) -> np.ndarray:
    """Scalar sum of each event's values (e.g. HT from jet pt), float64 numpy; NaN ignored.

    ``pt`` is jagged (one value per object) or a 2-d numpy array such as ``leading``'s output.
    """
    if isinstance(pt, np.ndarray) and pt.ndim == 2:
        return np.nansum(pt, axis=1, dtype=np.float64)
    offsets, values = _offsets_values(pt)
    counts = np.diff(offsets)
    event = np.repeat(np.arange(len(counts)), counts)
    weights = np.nan_to_num(values.astype(np.float64, copy=False), nan=0.0)
    return np.bincount(event, weights=weights, minlength=len(counts))


def os_pair_mask(charge1: ArrayLike, charge2: ArrayLike) -> ArrayLike:
    """True where the two charges have opposite signs (False if either is missing/NaN)."""
    return _elementwise(lambda q1, q2: q1 * q2 < 0, charge1, charge2)


__all__ = [
    "Leading",
    "delta_eta",
    "delta_phi",
    "delta_r",
    "leading",
    "leading_index",
    "os_pair_mask",
    "pair_mass",
    "sum_pt",
]
