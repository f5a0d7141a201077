"""The reference dimuon + VBF analysis written the way a coffea user writes it.

NanoEvents (``NanoAODSchema``, coffea's default "virtual" mode), coffea's own four-vector
behaviour for the pair masses (``(mu1 + mu2).mass``, computed in the branches' float32), hist for
the histograms, and ``processor.Runner`` with the ``IterativeExecutor`` (one process). Needs
coffea, which is installed for the benchmark only, in its own environment
(``python -m venv /root/bench-venv && /root/bench-venv/bin/pip install coffea``).
"""

from __future__ import annotations

import awkward as ak
import hist
import numpy as np
from coffea import processor
from coffea.nanoevents import NanoAODSchema

NanoAODSchema.warn_missing_crossrefs = False


def _histograms() -> dict:
    return {
        "dimuon_mass": hist.Hist.new.Reg(60, 0.0, 300.0, name="mass").Weight(),
        "dimuon_mass_vbf": hist.Hist.new.Reg(60, 0.0, 300.0, name="mass").Weight(),
        "mjj": hist.Hist.new.Reg(50, 0.0, 3000.0, name="mjj").Weight(),
        "njets": hist.Hist.new.Integer(0, 15, name="njets").Double(),
    }


def _np(array) -> np.ndarray:
    return ak.to_numpy(ak.fill_none(array, np.nan))


class DimuonVBFCoffea(processor.ProcessorABC):
    def process(self, events):
        dataset = events.metadata["dataset"]
        is_mc = bool(events.metadata.get("isMC", False))
        weight = ak.to_numpy(events.genWeight).astype(np.float64) if is_mc else np.ones(len(events))

        muons = events.Muon[(events.Muon.pt > 20.0) & (abs(events.Muon.eta) < 2.4)]
        two_muons = ak.to_numpy(ak.num(muons) >= 2)
        pair = ak.pad_none(muons, 2, clip=True)
        mu1, mu2 = pair[:, 0], pair[:, 1]
        opposite_sign = two_muons & ak.to_numpy(ak.fill_none(mu1.charge * mu2.charge < 0, False))
        mass = _np((mu1 + mu2).mass)

        jets = events.Jet[(events.Jet.pt > 25.0) & (abs(events.Jet.eta) < 4.7)]
        njets = ak.to_numpy(ak.num(jets))
        dijets = ak.pad_none(jets, 2, clip=True)
        j1, j2 = dijets[:, 0], dijets[:, 1]
        dijet = (njets >= 2) & (_np(j1.pt) > 30.0)
        mjj = _np((j1 + j2).mass)
        deta = np.abs(_np(j1.eta) - _np(j2.eta))
        vbf = opposite_sign & dijet & (mjj > 400.0) & (deta > 2.5)

        out = _histograms()
        out["dimuon_mass"].fill(mass=mass[opposite_sign], weight=weight[opposite_sign])
        out["dimuon_mass_vbf"].fill(mass=mass[vbf], weight=weight[vbf])
        out["mjj"].fill(mjj=mjj[dijet], weight=weight[dijet])
        out["njets"].fill(njets=njets)
        cutflow = {
            "all": len(events),
            "two_muons": int(two_muons.sum()),
            "opposite_sign": int(opposite_sign.sum()),
            "vbf": int(vbf.sum()),
        }
        return {dataset: {**out, "cutflow": cutflow, "sumw": float(weight.sum())}}

    def postprocess(self, accumulator):
        return accumulator


def run(path: str, chunksize: int, is_mc: bool = True) -> dict:
    runner = processor.Runner(
        executor=processor.IterativeExecutor(),
        schema=NanoAODSchema,
        chunksize=chunksize,
    )
    fileset = {"bench": {"files": {path: "Events"}, "metadata": {"isMC": is_mc}}}
    return runner(fileset, DimuonVBFCoffea(), treename="Events")["bench"]
