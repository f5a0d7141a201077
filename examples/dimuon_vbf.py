"""A dimuon + VBF-dijet processor in the spirit of the VBF H->mumu analysis.

Selection: muons with pT > 20 GeV and |eta| < 2.4; events with an opposite-sign pair of the
two leading such muons; VBF category: the two leading jets (pT > 30 / 25 GeV, |eta| < 4.7)
with m_jj > 400 GeV and |delta eta_jj| > 2.5. Simulation is weighted by the sign-carrying
``genWeight``; data has weight 1. Written as a coffea processor would be, without coffea;
the leading objects and pair masses come from ``condorcof.kinematics`` (numpy, float64).
"""

from __future__ import annotations

from typing import Any

import hist
import numpy as np
from analysis_helpers import P4, leading_objects, leading_pair_mass

MUON_PT, MUON_ETA = 20.0, 2.4
JET_PT_LEAD, JET_PT_SUB, JET_ETA = 30.0, 25.0, 4.7
MJJ_MIN, DETA_MIN = 400.0, 2.5


def _histograms() -> dict[str, hist.Hist]:
    return {
        "dimuon_mass": hist.Hist.new.Reg(
            60, 0.0, 300.0, name="mass", label="m(mu mu) [GeV]"
        ).Weight(),
        "dimuon_mass_vbf": hist.Hist.new.Reg(
            60, 0.0, 300.0, name="mass", label="m(mu mu) [GeV]"
        ).Weight(),
        "mjj": hist.Hist.new.Reg(50, 0.0, 3000.0, name="mjj", label="m(jj) [GeV]").Weight(),
        "njets": hist.Hist.new.Integer(0, 15, name="njets", label="selected jets").Double(),
    }


class DimuonVBF:
    """Histograms of the dimuon mass, inclusive and in the VBF category, per dataset."""

    def __init__(self, muon_pt: float = MUON_PT, mjj_min: float = MJJ_MIN):
        self.muon_pt = muon_pt
        self.mjj_min = mjj_min

    def process(self, events: Any) -> dict[str, Any]:
        dataset = events.metadata["dataset"]
        is_mc = bool(events.metadata.get("isMC", False))
        weight = np.asarray(events.genWeight, dtype=np.float64) if is_mc else np.ones(len(events))

        muons = events.Muon
        good_muons = (muons.pt > self.muon_pt) & (abs(muons.eta) < MUON_ETA)
        mu, n_muons = leading_objects(muons, good_muons, 2, (*P4, "charge"))
        two_muons = n_muons >= 2
        opposite_sign = two_muons & (mu["charge"][:, 0] * mu["charge"][:, 1] < 0)
        mass = leading_pair_mass(mu)

        jets = events.Jet
        good_jets = (jets.pt > JET_PT_SUB) & (abs(jets.eta) < JET_ETA)
        jet, n_jets = leading_objects(jets, good_jets, 2, P4)
        dijet = (n_jets >= 2) & (jet["pt"][:, 0] > JET_PT_LEAD)
        mjj = leading_pair_mass(jet)
        deta = np.abs(jet["eta"][:, 0] - jet["eta"][:, 1])
        vbf = opposite_sign & dijet & (mjj > self.mjj_min) & (deta > DETA_MIN)

        out = _histograms()
        out["dimuon_mass"].fill(mass=mass[opposite_sign], weight=weight[opposite_sign])
        out["dimuon_mass_vbf"].fill(mass=mass[vbf], weight=weight[vbf])
        out["mjj"].fill(mjj=mjj[dijet], weight=weight[dijet])
        out["njets"].fill(njets=n_jets)
        cutflow = {
            "all": len(events),
            "two_muons": int(two_muons.sum()),
            "opposite_sign": int(opposite_sign.sum()),
            "vbf": int(vbf.sum()),
        }
        return {dataset: {**out, "cutflow": cutflow, "sumw": float(weight.sum())}}

    def postprocess(self, accumulator: dict[str, Any]) -> dict[str, Any]:
        return accumulator
