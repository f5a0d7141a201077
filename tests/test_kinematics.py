"""Tests for condorcof.kinematics: values against scikit-hep vector and plain numpy."""

from __future__ import annotations

import os
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot
import vector

from condorcof.kinematics import (
    _two_cos_delta,
    delta_eta,
    delta_phi,
    delta_r,
    leading,
    leading_index,
    os_pair_mask,
    pair_mass,
    sum_pt,
)

DATA = Path(os.environ.get("CONDORCOF_DATA", Path(__file__).parents[2] / "shared" / "data"))
FIELDS = ("pt", "eta", "phi", "mass")

vector.register_awkward()


def _random_p4(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    return {
        "pt": rng.exponential(30.0, n) + 3.0,
        "eta": rng.uniform(-4.0, 4.0, n),
        "phi": rng.uniform(-np.pi, np.pi, n),
        "mass": rng.choice([0.0, 0.10566, 4.2, 80.0], n),
    }


def _vector(p4: dict[str, np.ndarray]) -> ak.Array:
    return ak.zip({f: np.asarray(p4[f], dtype=np.float64) for f in FIELDS}, with_name="Momentum4D")


@pytest.fixture
def muons() -> ak.Array:
    path = DATA / "nano_dy.root"
    if not path.exists():
        pytest.skip(f"test data {path} not found")
    tree = uproot.open(path)["Events"]
    arrays = tree.arrays([f"Muon_{f}" for f in (*FIELDS, "charge")])
    return ak.zip({f: arrays[f"Muon_{f}"] for f in (*FIELDS, "charge")})


def test_pair_mass_matches_vector_float64() -> None:
    rng = np.random.default_rng(7)
    a, b = _random_p4(rng, 50_000), _random_p4(rng, 50_000)
    expected = ak.to_numpy((_vector(a) + _vector(b)).mass)
    got = pair_mass(*(a[f] for f in FIELDS), *(b[f] for f in FIELDS))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_pair_mass_on_float32_inputs_is_float64_accurate() -> None:
    rng = np.random.default_rng(8)
    a = {k: v.astype(np.float32) for k, v in _random_p4(rng, 20_000).items()}
    b = {k: v.astype(np.float32) for k, v in _random_p4(rng, 20_000).items()}
    got = pair_mass(*(a[f] for f in FIELDS), *(b[f] for f in FIELDS))
    # reference: vector on the same values promoted to float64 (vector on float32 is less exact)
    expected = ak.to_numpy((_vector(a) + _vector(b)).mass)
    np.testing.assert_allclose(got, expected, rtol=1e-8)


def test_pair_mass_collinear_and_scalar_masses() -> None:
    pt = np.array([50.0, 50.0, 10.0])
    eta = np.array([1.0, 1.0, 0.0])
    phi = np.array([0.3, 0.3, 3.1])
    got = pair_mass(pt, eta, phi, 0.0, pt, eta, phi, 0.0)
    np.testing.assert_allclose(got, 0.0, atol=1e-6)  # identical massless momenta
    muon = pair_mass(pt, eta, phi, 0.10566, pt, eta, phi, 0.10566)
    np.testing.assert_allclose(muon, 2 * 0.10566, rtol=1e-6)


def test_two_cos_delta_is_float64_exact() -> None:
    rng = np.random.default_rng(9)
    phi1, phi2 = rng.uniform(-10.0, 10.0, 200_000), rng.uniform(-np.pi, np.pi, 200_000)
    phi1[:4] = [np.pi, -np.pi, 0.0, 2 * np.pi]
    phi2[:4] = [-np.pi, np.pi, 0.0, 0.0]
    out, tmp = np.empty_like(phi1), np.empty_like(phi1)
    _two_cos_delta(phi1, phi2, out, tmp)
    np.testing.assert_allclose(out, 2 * np.cos(phi1 - phi2), rtol=0, atol=1e-14)


def test_leading_pads_and_keeps_values(muons: ak.Array) -> None:
    pt = leading(muons.pt, 2)
    assert pt.shape == (len(muons), 2) and pt.dtype == np.float64 and pt.flags.f_contiguous
    for row, values in zip(pt, muons.pt.tolist(), strict=True):
        expected = (values + [np.nan, np.nan])[:2]
        np.testing.assert_array_equal(row, np.array(expected, dtype=np.float32))
    charge = leading(muons.charge, 3, fill=0, dtype=np.int32)
    assert charge.dtype == np.int32
    assert charge.tolist() == [(q + [0, 0, 0])[:3] for q in muons.charge.tolist()]
    # sliced (offsets not starting at 0), masked and 2-d numpy inputs
    assert np.array_equal(leading(muons.pt[5:], 2), pt[5:], equal_nan=True)
    masked = muons.pt[muons.pt > 20]
    expected = [(v + [np.nan])[:1] for v in masked.tolist()]
    np.testing.assert_array_equal(leading(masked, 1), np.array(expected, dtype=np.float32))
    np.testing.assert_array_equal(leading(pt, 3)[:, :2], pt)
    assert np.isnan(leading(pt, 3)[:, 2]).all()
    assert leading(ak.Array([[], []]), 2).shape == (2, 2)


def test_leading_index_picks_the_first_selected_objects(muons: ak.Array) -> None:
    good = (muons.pt > 20) & (abs(muons.eta) < 2.4)
    lead = leading_index(good, 2)
    assert lead.index.shape == (len(muons), 2) and lead.index.flags.f_contiguous
    assert lead.counts.tolist() == ak.sum(good, axis=1).tolist()
    selected = muons[good]
    for f in (*FIELDS, "charge"):
        expected = [(v + [np.nan, np.nan])[:2] for v in selected[f].tolist()]
        got = lead.take(muons[f])
        assert got.dtype == np.float64 and got.flags.f_contiguous
        np.testing.assert_array_equal(got, np.array(expected, dtype=np.float64))
        np.testing.assert_array_equal(leading(muons[f], 2, mask=good), got)
        np.testing.assert_array_equal(got, leading(selected[f], 2))  # masked records too
    charge = lead.take(muons.charge, fill=0, dtype=np.int32)
    assert charge.dtype == np.int32 and (charge[lead.counts < 1, 0] == 0).all()
    # a slice (offsets not from 0), nothing selected, empty events, three objects
    np.testing.assert_array_equal(
        leading_index(good[7:], 2).take(muons.pt[7:]), lead.take(muons.pt)[7:]
    )
    assert np.isnan(leading_index(muons.pt > 1e9, 1).take(muons.pt)).all()
    empty = leading_index(ak.Array([[], [True], []]), 3)
    assert empty.counts.tolist() == [0, 1, 0]
    np.testing.assert_array_equal(
        empty.take(ak.Array([[], [5.0], []])), [[np.nan] * 3, [5.0, np.nan, np.nan], [np.nan] * 3]
    )
    with pytest.raises(ValueError, match="same lists"):
        lead.take(muons.pt[::-1])


def test_dimuon_mass_from_leading_matches_vector(muons: ak.Array) -> None:
    lead = {f: leading(muons[f], 2) for f in FIELDS}
    mass = pair_mass(*(lead[f][:, 0] for f in FIELDS), *(lead[f][:, 1] for f in FIELDS))
    two = ak.num(muons) >= 2
    assert np.isnan(mass[~ak.to_numpy(two)]).all()
    mu = ak.zip({f: ak.values_astype(muons[f], np.float64) for f in FIELDS}, with_name="Momentum4D")
    mu = mu[two]
    expected = ak.to_numpy((mu[:, 0] + mu[:, 1]).mass)
    np.testing.assert_allclose(mass[ak.to_numpy(two)], expected, rtol=1e-8)


def test_jagged_pair_mass_and_deltas_match_vector(muons: ak.Array) -> None:
    pairs = ak.combinations(muons, 2, fields=["a", "b"])
    a, b = pairs.a, pairs.b
    got = pair_mass(*(a[f] for f in FIELDS), *(b[f] for f in FIELDS))
    va = ak.zip({f: ak.values_astype(a[f], np.float64) for f in FIELDS}, with_name="Momentum4D")
    vb = ak.zip({f: ak.values_astype(b[f], np.float64) for f in FIELDS}, with_name="Momentum4D")
    assert ak.num(got).tolist() == ak.num(pairs).tolist()
    np.testing.assert_allclose(ak.flatten(got), ak.flatten((va + vb).mass), rtol=1e-8)
    dphi = delta_phi(a.phi, b.phi)
    np.testing.assert_allclose(ak.flatten(dphi), ak.flatten(va.deltaphi(vb)), atol=1e-12)
    dr = delta_r(a.eta, a.phi, b.eta, b.phi)
    np.testing.assert_allclose(ak.flatten(dr), ak.flatten(va.deltaR(vb)), atol=1e-12)
    deta = delta_eta(a.eta, b.eta)
    np.testing.assert_allclose(ak.flatten(deta), ak.flatten(va.deltaeta(vb)), atol=1e-12)


def test_delta_phi_wraps_and_broadcasts() -> None:
    phi1 = np.array([3.0, -3.0, 0.5, 10.0])
    phi2 = np.array([-3.0, 3.0, 0.0, 0.0])
    got = delta_phi(phi1, phi2)
    assert got.dtype == np.float64 and np.all(np.abs(got) <= np.pi)
    np.testing.assert_allclose(np.cos(got), np.cos(phi1 - phi2), atol=1e-12)
    np.testing.assert_allclose(got[:3], [6.0 - 2 * np.pi, 2 * np.pi - 6.0, 0.5])
    jets = ak.Array([[0.1, 3.0], [], [-3.0]])
    met = np.array([-3.0, 1.0, 3.0])
    expected = [[0.1 + 3.0, 6.0 - 2 * np.pi], [], [2 * np.pi - 6.0]]
    got = delta_phi(jets, met)
    for row, exp in zip(got.tolist(), expected, strict=True):
        np.testing.assert_allclose(row, exp)


def test_sum_pt_and_os_mask(muons: ak.Array) -> None:
    ht = sum_pt(muons.pt)
    assert ht.dtype == np.float64
    np.testing.assert_allclose(ht, ak.to_numpy(ak.sum(ak.values_astype(muons.pt, "f8"), axis=1)))
    np.testing.assert_allclose(
        sum_pt(leading(muons.pt, 2)), [sum(v[:2]) for v in muons.pt.tolist()]
    )
    q = leading(muons.charge, 2)
    mask = os_pair_mask(q[:, 0], q[:, 1])
    expected = [len(v) >= 2 and v[0] * v[1] < 0 for v in muons.charge.tolist()]
    assert mask.dtype == np.bool_ and mask.tolist() == expected
    assert os_pair_mask(np.array([1.0, np.nan]), np.array([-1.0, -1.0])).tolist() == [True, False]
