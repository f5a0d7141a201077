"""Generate NanoAOD-like ROOT files with uproot's writer, for the benchmarks.

``python benchmarks/generate.py OUT.root --events 1000000 --codec zstd``

The branch layout is that of a real Run-3 NanoAODv13 file (``nanoaod_v13_schema.json``: 1741
branches, 30 collections with ``nX`` counters, 616 ``HLT_*`` and 407 ``L1_*`` booleans, in the
file's order and with its types). The values are synthetic but shaped like a Drell-Yan + jets
sample, so that a dimuon + VBF selection behaves realistically:

* ``Muon``: a Z -> mu mu decay (Breit-Wigner mass, boosted, in the tracker acceptance) in 65 % of
  events plus soft extra muons; pT-ordered, opposite charges for the pair;
* ``Jet``: Poisson(4.5) jets with a falling pT spectrum from 15 GeV, plus a forward VBF-like pair
  in 8 % of events; pT-ordered;
* ``genWeight``: +-w with 16 % negative (as an NLO generator gives);
* every other collection: its multiplicity drawn around the real file's mean (fixed-size ones
  like ``LHEPdfWeight`` stay fixed), values by branch name and type (``*_pt`` falling, ``*_eta``,
  ``*_phi``, ids, indices, flags); ``HLT_*``/``L1_*``/``Flag_*`` fire at per-path rates
  between 1e-4 and 0.5.

Floats other than ``*_pt`` keep 10-12 mantissa bits, as NanoAOD's ``precision`` setting does, so
the compression ratio is close to a real file's. The tree is a TTree (``mktree``; uproot writes
an RNTuple for ``file["Events"] = ...``), written ``--basket-events`` entries per basket.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import time
from pathlib import Path

import awkward as ak
import numpy as np
import uproot

SCHEMA = Path(__file__).with_name("nanoaod_v13_schema.json")
MUON_MASS = 0.1056584
Z_MASS, Z_WIDTH = 91.1876, 2.4952
# DY + jets multiplicities (means) where they differ from the template file's (a ggH sample)
MEANS = {
    "nElectron": 1.0,
    "nPhoton": 1.3,
    "nTau": 1.0,
    "nGenPart": 45.0,
    "nTrigObj": 12.0,
    "nGenJet": 5.0,
    "nSV": 1.0,
    "nFatJet": 0.3,
    "nIsoTrack": 0.5,
    "nLowPtElectron": 0.8,
}
LOW_PRECISION = ("Gen", "SubGen", "TrigObj", "LHE", "PSWeight", "L1PreFiring", "Pileup")


def _seed_of(name: str) -> int:
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=4).digest(), "little")


def _truncate(values: np.ndarray, bits: int) -> np.ndarray:
    """Keep ``bits`` mantissa bits of float32 values (NanoAOD's reduced precision)."""
    raw = values.astype(np.float32).view(np.uint32)
    raw &= np.uint32((0xFFFFFFFF << (23 - bits)) & 0xFFFFFFFF)
    return raw.view(np.float32)


def _ordered(event: np.ndarray, pt: np.ndarray, n_events: int) -> tuple[np.ndarray, np.ndarray]:
    """Order objects by event, then by decreasing pt; return the order and counts per event."""
    order = np.lexsort((-pt, event))
    return order, np.bincount(event, minlength=n_events)


def _boost_decay(rng, mass: np.ndarray, pt: np.ndarray, y: np.ndarray, phi: np.ndarray):
    """Two massless-ish daughters of a parent (mass, pt, y, phi), isotropic in its rest frame."""
    n = len(mass)
    mt = np.sqrt(mass**2 + pt**2)
    e, px, py, pz = mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y)
    bx, by, bz = px / e, py / e, pz / e
    b2 = bx * bx + by * by + bz * bz
    gamma = e / mass
    cos_t = rng.uniform(-1, 1, n)
    sin_t = np.sqrt(1 - cos_t**2)
    phi_s = rng.uniform(-math.pi, math.pi, n)
    p_star = np.sqrt(np.maximum((mass / 2) ** 2 - MUON_MASS**2, 0))
    out = []
    for sign in (1.0, -1.0):
        qx, qy, qz = (
            sign * p_star * sin_t * np.cos(phi_s),
            sign * p_star * sin_t * np.sin(phi_s),
            sign * p_star * cos_t,
        )
        qe = np.sqrt(p_star**2 + MUON_MASS**2)
        bp = bx * qx + by * qy + bz * qz
        k = np.where(b2 > 0, (gamma - 1) * bp / np.where(b2 > 0, b2, 1), 0) + gamma * qe
        fx, fy, fz = qx + k * bx, qy + k * by, qz + k * bz
        fpt = np.hypot(fx, fy)
        out.append((fpt, np.arcsinh(fz / fpt), np.arctan2(fy, fx)))
    return out


def muons(rng, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Z -> mu mu in 65 % of events plus soft extra muons, in |eta| < 2.4, pT > 3, pT-ordered."""
    has_z = rng.random(n) < 0.65
    nz = int(has_z.sum())
    mass = np.clip(Z_MASS + 0.5 * Z_WIDTH * np.tan(math.pi * (rng.random(nz) - 0.5)), 12, 400)
    mass = mass * (1 + 0.015 * rng.standard_normal(nz))  # resolution
    zpt = rng.exponential(12.0, nz)
    zy = rng.normal(0, 1.6, nz)
    zphi = rng.uniform(-math.pi, math.pi, nz)
    (pt1, eta1, phi1), (pt2, eta2, phi2) = _boost_decay(rng, mass, zpt, zy, zphi)
    q = rng.choice(np.array([-1, 1], dtype=np.int32), nz)
    z_event = np.flatnonzero(has_z)
    n_extra = rng.poisson(0.35, n)
    x_event = np.repeat(np.arange(n), n_extra)
    nx = len(x_event)
    event = np.concatenate([z_event, z_event, x_event])
    pt = np.concatenate([pt1, pt2, 3 + rng.exponential(6.0, nx)])
    eta = np.concatenate([eta1, eta2, rng.uniform(-2.4, 2.4, nx)])
    phi = np.concatenate([phi1, phi2, rng.uniform(-math.pi, math.pi, nx)])
    charge = np.concatenate([q, -q, rng.choice(np.array([-1, 1], dtype=np.int32), nx)])
    keep = (pt > 3) & (np.abs(eta) < 2.4)
    event, pt, eta, phi, charge = event[keep], pt[keep], eta[keep], phi[keep], charge[keep]
    order, counts = _ordered(event, pt, n)
    fields = {
        "pt": pt[order].astype(np.float32),
        "eta": _truncate(eta[order], 12),
        "phi": _truncate(phi[order], 12),
        "mass": np.full(len(order), MUON_MASS, dtype=np.float32),
        "charge": charge[order],
        "pdgId": (-13 * charge[order]).astype(np.int32),
    }
    return counts, fields


def jets(rng, n: int) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Poisson(4.5) jets (pT > 15, falling), plus a forward VBF-like pair in 8 % of events."""
    counts = rng.poisson(4.5, n)
    event = np.repeat(np.arange(n), counts)
    m = len(event)
    pt = 15 + rng.exponential(10.0, m) * (1 + rng.exponential(0.5, m))
    eta = np.clip(rng.normal(0, 2.0, m), -4.99, 4.99)
    vbf = np.flatnonzero(rng.random(n) < 0.08)
    k = len(vbf)
    side = rng.choice(np.array([-1.0, 1.0]), k)
    event = np.concatenate([event, vbf, vbf])
    pt = np.concatenate([pt, 30 + rng.exponential(50.0, k), 25 + rng.exponential(40.0, k)])
    eta = np.concatenate([eta, side * rng.uniform(1.2, 4.6, k), -side * rng.uniform(1.2, 4.6, k)])
    m = len(event)
    phi = rng.uniform(-math.pi, math.pi, m)
    mass = pt * rng.uniform(0.04, 0.2, m)
    order, counts = _ordered(event, pt, n)
    fields = {
        "pt": _truncate(pt[order], 23),
        "eta": _truncate(eta[order], 12),
        "phi": _truncate(phi[order], 12),
        "mass": _truncate(mass[order], 10),
    }
    return counts, fields


def _values(rng, name: str, dtype: np.dtype, size: int, counts_max: int = 10) -> np.ndarray:
    """Plausible values for a branch, by its name and type."""
    short = name.rsplit("_", 1)[-1]
    if dtype == np.bool_:
        rate = 10 ** np.random.default_rng(_seed_of(name)).uniform(-4, -0.3)
        if name.startswith("Flag_"):
            rate = 1 - rate / 10
        return rng.random(size) < rate
    if dtype.kind == "f":
        # NanoAOD's precision: reconstructed pt in full, eta/phi 12 bits, most others 10,
        # generator-level and trigger objects 8 (GenPart, GenJet, TrigObj, LHE, weights)
        low = name.startswith(LOW_PRECISION)
        if short == "pt" or short.startswith("pt"):
            return _truncate(10 + rng.exponential(20.0, size), 8 if low else 23)
        if short == "eta":
            return _truncate(rng.normal(0, 2.0, size), 8 if low else 12)
        if short == "phi":
            return _truncate(rng.uniform(-math.pi, math.pi, size), 8 if low else 12)
        if "Weight" in name:
            return _truncate(rng.normal(1.0, 0.05, size), 8)
        branch_rng = np.random.default_rng(_seed_of(name))
        scale, zeros = 10 ** branch_rng.uniform(-2, 2), branch_rng.uniform(0, 0.6)
        values = _truncate(rng.exponential(scale, size), 8 if low else 10)
        values[rng.random(size) < zeros] = 0  # isolations, scores, errors are often 0
        return values
    if dtype.kind in "iu":
        lo, hi = (0, 8) if dtype.kind == "u" else (-1, counts_max)
        if short == "pdgId":
            return rng.choice(np.array([-211, 211, 22, 11, -11, 13, -13, 1, 2, 21], np.int32), size)
        if short == "charge":
            return rng.choice(np.array([-1, 1], dtype=dtype), size)
        values = np.minimum(rng.geometric(0.45, size) - 1, hi - 1) + lo  # small values common
        return values.astype(dtype)
    raise ValueError(f"{name}: no generator for {dtype}")


class Layout:
    """The template's branches as uproot writer types: collections of fields, flat branches."""

    def __init__(self, schema: dict) -> None:
        self.counters = schema["counters"]
        self.items: list[tuple[str, object]] = []  # (name, dtype) or (collection, {field: dtype})
        collections: dict[str, dict[str, np.dtype]] = {}
        for name, dtype, counter in schema["branches"]:
            dtype = np.dtype(dtype)
            if counter is None:
                if name not in self.counters:
                    self.items.append((name, dtype))
                continue
            coll = counter[1:]
            if coll not in collections:
                collections[coll] = {}
                self.items.append((coll, collections[coll]))
            collections[coll][name[len(coll) + 1 :] if name != coll else ""] = dtype

    def writer_types(self) -> dict[str, str | np.dtype]:
        types: dict[str, str | np.dtype] = {}
        for name, what in self.items:
            if isinstance(what, np.dtype):
                types[name] = what
            elif "" in what:  # e.g. LHEPdfWeight: a plain jagged branch
                types[name] = "var * " + _datashape(what[""])
            else:
                inner = ", ".join(f"{f}: {_datashape(d)}" for f, d in what.items())
                types[name] = "var * {" + inner + "}"
        return types

    def batch(self, rng, start: int, n: int) -> dict[str, object]:
        out: dict[str, object] = {}
        for name, what in self.items:
            if isinstance(what, np.dtype):
                out[name] = self._flat(rng, name, what, start, n)
                continue
            counter = "n" + name
            if name == "Muon":
                counts, fields = muons(rng, n)
            elif name == "Jet":
                counts, fields = jets(rng, n)
            else:
                info = self.counters[counter]
                mean, cap = MEANS.get(counter, info["mean"]), max(info["max"], 1)
                if info["max"] > 0 and info["mean"] / info["max"] > 0.95:
                    counts = np.full(n, info["max"], dtype=np.int64)
                else:
                    counts = np.minimum(rng.poisson(mean, n), max(3 * cap, 8))
                fields = {}
            total = int(counts.sum())
            for f, dtype in what.items():
                if f not in fields:
                    cmax = max(int(counts.max()) if n else 1, 1)
                    fields[f] = _values(rng, f"{name}_{f}", dtype, total, cmax)
                fields[f] = np.asarray(fields[f]).astype(dtype, copy=False)
            if "" in what:
                out[name] = ak.unflatten(fields[""], counts)
            else:
                out[name] = ak.unflatten(ak.zip(fields, depth_limit=1), counts)
        return out

    @staticmethod
    def _flat(rng, name: str, dtype: np.dtype, start: int, n: int) -> np.ndarray:
        if name == "run":
            return np.full(n, 1, dtype=dtype)
        if name == "luminosityBlock":
            return (1 + np.arange(start, start + n) // 1000).astype(dtype)
        if name == "event":
            return np.arange(start + 1, start + n + 1, dtype=dtype)
        if name == "genWeight":
            sign = np.where(rng.random(n) < 0.16, -1.0, 1.0)
            return (sign * 1234.5).astype(dtype)
        return _values(rng, name, dtype, n)


def _datashape(dtype: np.dtype) -> str:
    return {"b": "bool"}.get(dtype.kind, str(dtype))


def codec_of(text: str):
    """``zstd``, ``zstd:5``, ``lzma``, ``lzma:9``, ``zlib:1``, ``lz4``."""
    name, _, level = text.partition(":")
    cls = {"zstd": uproot.ZSTD, "lzma": uproot.LZMA, "zlib": uproot.ZLIB, "lz4": uproot.LZ4}[name]
    default = {"zstd": 5, "lzma": 9, "zlib": 1, "lz4": 4}[name]
    return cls(int(level) if level else default)


def generate(
    path: str | Path,
    events: int,
    codec: str = "zstd",
    basket_events: int = 10_000,
    seed: int = 1,
    schema_path: Path = SCHEMA,
    quiet: bool = False,
) -> Path:
    """Write ``events`` NanoAOD-like events to ``path`` (atomically: a temporary name first)."""
    layout = Layout(json.loads(Path(schema_path).read_text()))
    path = Path(path)
    tmp = path.with_name(path.name + ".part")
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    with uproot.recreate(tmp, compression=codec_of(codec)) as f:
        tree = f.mktree(
            "Events",
            layout.writer_types(),
            initial_basket_capacity=max(10, -(-events // basket_events) + 1),
        )
        for start in range(0, events, basket_events):
            n = min(basket_events, events - start)
            tree.extend(layout.batch(rng, start, n))
            if not quiet and (start // basket_events) % 10 == 0:
                rate = (start + n) / (time.perf_counter() - t0)
                print(f"{path.name}: {start + n}/{events} events ({rate:.0f}/s)", flush=True)
    tmp.replace(path)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument(
        "--codec",
        default="zstd",
        help="zstd[:level] (default 5), lzma[:level] "
        "(default 9, as NANOAODSIM), zlib[:level], lz4[:level]",
    )
    parser.add_argument("--basket-events", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    t0 = time.perf_counter()
    path = generate(args.output, args.events, args.codec, args.basket_events, args.seed)
    with uproot.open(path) as f:
        tree = f["Events"]
        print(
            f"{path}: {tree.num_entries} events, {len(tree.keys())} branches, "
            f"{path.stat().st_size / 1e6:.1f} MB, {time.perf_counter() - t0:.1f} s"
        )


if __name__ == "__main__":
    main()
