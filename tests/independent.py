"""An independent computation of the example analysis with plain uproot and numpy loops.

It shares no code with condorcof or the example processor: the tests compare the two.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import uproot

MASS_EDGES = np.linspace(0.0, 300.0, 61)
MJJ_EDGES = np.linspace(0.0, 3000.0, 51)


def _mass(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    e = px = py = pz = 0.0
    for pt, eta, phi, m in (a, b):
        px += pt * math.cos(phi)
        py += pt * math.sin(phi)
        pz += pt * math.sinh(eta)
        e += math.sqrt((pt * math.cosh(eta)) ** 2 + m * m)
    return math.sqrt(max(e * e - px * px - py * py - pz * pz, 0.0))


def expected(path: Path, is_mc: bool, start: int = 0, stop: int | None = None) -> dict[str, Any]:
    """Histogram contents (weights and counts) and cutflow for one file's entry range."""
    names = [
        "Muon_pt",
        "Muon_eta",
        "Muon_phi",
        "Muon_mass",
        "Muon_charge",
        "Jet_pt",
        "Jet_eta",
        "Jet_phi",
        "Jet_mass",
    ] + (["genWeight"] if is_mc else [])
    with uproot.open(path) as f:
        arrays = f["Events"].arrays(names, entry_start=start, entry_stop=stop, library="np")
    n = len(arrays["Muon_pt"])
    mass, w_mass, vbf_mass, w_vbf, mjj, w_mjj, njets = [], [], [], [], [], [], []
    cut = {"all": n, "two_muons": 0, "opposite_sign": 0, "vbf": 0}
    for i in range(n):
        w = float(arrays["genWeight"][i]) if is_mc else 1.0
        mus = [
            (float(pt), float(eta), float(phi), float(m), int(q))
            for pt, eta, phi, m, q in zip(*(arrays[k][i] for k in names[:5]), strict=True)
            if pt > 20.0 and abs(eta) < 2.4
        ]
        jets = [
            (float(pt), float(eta), float(phi), float(m))
            for pt, eta, phi, m in zip(*(arrays[k][i] for k in names[5:9]), strict=True)
            if pt > 25.0 and abs(eta) < 4.7
        ]
        njets.append(len(jets))
        os_pair = False
        if len(mus) >= 2:
            cut["two_muons"] += 1
            if mus[0][4] * mus[1][4] < 0:
                os_pair = True
                cut["opposite_sign"] += 1
                mass.append(_mass(mus[0][:4], mus[1][:4]))
                w_mass.append(w)
        if len(jets) >= 2 and jets[0][0] > 30.0:
            m_jj = _mass(jets[0], jets[1])
            mjj.append(m_jj)
            w_mjj.append(w)
            if os_pair and m_jj > 400.0 and abs(jets[0][1] - jets[1][1]) > 2.5:
                cut["vbf"] += 1
                vbf_mass.append(_mass(mus[0][:4], mus[1][:4]))
                w_vbf.append(w)
    return {
        "dimuon_mass": np.histogram(mass, MASS_EDGES, weights=w_mass)[0],
        "dimuon_mass_vbf": np.histogram(vbf_mass, MASS_EDGES, weights=w_vbf)[0],
        "mjj": np.histogram(mjj, MJJ_EDGES, weights=w_mjj)[0],
        "njets": np.bincount(np.minimum(njets, 15), minlength=16)[:15] if njets else np.zeros(15),
        "cutflow": cut,
        "sumw": float(np.sum(arrays["genWeight"], dtype=np.float64)) if is_mc else float(n),
    }


def assert_matches(output: dict[str, Any], exp: dict[str, Any]) -> None:
    """Compare one dataset's processor output with :func:`expected`, bin by bin."""
    for key in ("dimuon_mass", "dimuon_mass_vbf", "mjj"):
        np.testing.assert_allclose(
            output[key].values(), exp[key], rtol=1e-9, atol=1e-9, err_msg=key
        )
    np.testing.assert_array_equal(output["njets"].values(), exp["njets"])
    assert output["cutflow"] == exp["cutflow"]
    assert math.isclose(output["sumw"], exp["sumw"], rel_tol=1e-9)


def assert_same_output(a: Any, b: Any, path: str = "") -> None:
    """Two results equal: dicts key by key, histograms bin by bin (values and variances)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), path
        for k in a:
            assert_same_output(a[k], b[k], f"{path}[{k!r}]")
    elif hasattr(a, "values") and hasattr(a, "axes"):
        assert a.axes == b.axes, path
        np.testing.assert_allclose(a.values(), b.values(), rtol=1e-12, atol=1e-9, err_msg=path)
        va, vb = a.variances(), b.variances()
        if va is not None and vb is not None:  # a pickled Double histogram may forget its variances
            np.testing.assert_allclose(va, vb, rtol=1e-12, atol=1e-9, err_msg=path)
    elif isinstance(a, float):
        assert math.isclose(a, b, rel_tol=1e-12), path
    else:
        assert a == b, path
