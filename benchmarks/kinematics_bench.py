"""Micro-benchmark of ``condorcof.kinematics`` against scikit-hep ``vector`` on awkward records.

``python benchmarks/kinematics_bench.py [--events 1000000] [--repeats 7]``

Synthetic muon-like collections (Poisson(2.5) objects per event, pt/eta/phi/mass), in float32
(as NanoAOD stores them) and in float64. Each case is timed as the median of ``--repeats``
runs in this one process, and the ratio is vector's time over condorcof's (above 1: condorcof
is faster). Before timing, every case checks condorcof's numbers against vector's run on the
same values cast to float64 (rtol 1e-9), and reports how far vector's own result is from that
reference: on float32 records vector computes in float32. Cases:

* ``pair mass``: the invariant mass of two per-event four-vectors (flat arrays):
  ``(a + b).mass`` on ``Momentum4D`` records vs ``kinematics.pair_mass`` (always float64);
* ``leading two``: the first two objects of each event, padded: ``ak.pad_none`` +
  ``ak.fill_none`` + ``ak.to_numpy`` of each field vs ``kinematics.leading`` per field;
* ``selected leading two``: the first two objects passing pt > 20 and |eta| < 2.4, all four
  fields: masking the records, then as above, vs ``kinematics.leading_index`` + ``take``;
* ``selected dimuon mass``: the whole thing: mask, two leading, OS-independent pair mass.
"""

from __future__ import annotations

import argparse
import statistics
import time

import awkward as ak
import numpy as np
import vector

from condorcof import kinematics as kin

vector.register_awkward()
FIELDS = ("pt", "eta", "phi", "mass")


def median_time(func, repeats: int) -> float:
    func()  # warm up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        func()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def collections(events: int, dtype, seed: int = 5) -> ak.Array:
    rng = np.random.default_rng(seed)
    counts = rng.poisson(2.5, events)
    n = int(counts.sum())
    fields = {
        "pt": (3 + rng.exponential(25.0, n)),
        "eta": rng.uniform(-2.5, 2.5, n),
        "phi": rng.uniform(-np.pi, np.pi, n),
        "mass": np.full(n, 0.10566),
    }
    records = ak.zip({k: v.astype(dtype) for k, v in fields.items()}, with_name="Momentum4D")
    return ak.unflatten(records, counts)


def cases(objects: ak.Array):
    """(name, vector's function, condorcof's function) on these objects."""
    two = objects[ak.num(objects) >= 2]
    a_rec, b_rec = two[:, 0], two[:, 1]
    a = {f: ak.to_numpy(a_rec[f]) for f in FIELDS}
    b = {f: ak.to_numpy(b_rec[f]) for f in FIELDS}

    def vec_mass():
        return ak.to_numpy((a_rec + b_rec).mass)

    def kin_mass():
        return kin.pair_mass(*(a[f] for f in FIELDS), *(b[f] for f in FIELDS))

    def vec_leading():
        padded = ak.pad_none(objects, 2, clip=True)
        return np.stack([ak.to_numpy(ak.fill_none(padded[f], np.nan)) for f in FIELDS], axis=-1)

    def kin_leading():
        return np.stack([kin.leading(objects[f], 2) for f in FIELDS], axis=-1)

    def vec_selected():
        good = objects[(objects.pt > 20) & (abs(objects.eta) < 2.4)]
        padded = ak.pad_none(good, 2, clip=True)
        return np.stack([ak.to_numpy(ak.fill_none(padded[f], np.nan)) for f in FIELDS], axis=-1)

    def kin_selected():
        lead = kin.leading_index((objects["pt"] > 20) & (abs(objects["eta"]) < 2.4), 2)
        return np.stack([lead.take(objects[f]) for f in FIELDS], axis=-1)

    def vec_dimuon():
        good = objects[(objects.pt > 20) & (abs(objects.eta) < 2.4)]
        padded = ak.pad_none(good, 2, clip=True)
        return ak.to_numpy(ak.fill_none((padded[:, 0] + padded[:, 1]).mass, np.nan))

    def kin_dimuon():
        lead = kin.leading_index((objects["pt"] > 20) & (abs(objects["eta"]) < 2.4), 2)
        p = {f: lead.take(objects[f]) for f in FIELDS}
        return kin.pair_mass(*(p[f][:, 0] for f in FIELDS), *(p[f][:, 1] for f in FIELDS))

    return [
        ("pair mass", vec_mass, kin_mass),
        ("leading two", vec_leading, kin_leading),
        ("selected leading two", vec_selected, kin_selected),
        ("selected dimuon mass", vec_dimuon, kin_dimuon),
    ]


def _max_rel(got: np.ndarray, ref: np.ndarray) -> float:
    both = ~np.isnan(ref)
    assert np.array_equal(np.isnan(got), ~both)
    return float(np.max(np.abs(got[both] - ref[both]) / np.maximum(np.abs(ref[both]), 1e-300)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(f"{args.events:,} events, Poisson(2.5) objects each; median of {args.repeats}\n")
    print(
        "| case | records | vector ms | condorcof.kinematics ms | speed-up "
        "| vector's max rel. error |"
    )
    print("|---|---|---|---|---|---|")
    for dtype in (np.float32, np.float64):
        objects = collections(args.events, dtype)
        exact = ak.values_astype(objects, np.float64)  # the same values, computed in float64
        reference = {name: np.asarray(vec(), dtype=np.float64) for name, vec, _ in cases(exact)}
        for name, vec, kin_func in cases(objects):
            ref = reference[name]
            np.testing.assert_allclose(kin_func(), ref, rtol=1e-9, atol=1e-9, err_msg=name)
            error = _max_rel(np.asarray(vec(), dtype=np.float64), ref)
            t_vec = median_time(vec, args.repeats)
            t_kin = median_time(kin_func, args.repeats)
            print(
                f"| {name} | {np.dtype(dtype).name} | {t_vec * 1e3:.1f} | {t_kin * 1e3:.1f} "
                f"| {t_vec / t_kin:.1f}x | {error:.1e} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
