"""Tests for condorcof.events on the real NanoAOD (and non-NanoAOD) files in the data dir."""

from __future__ import annotations

import functools
import os
import pickle
from pathlib import Path

import awkward as ak
import numpy as np
import pytest
import uproot

from condorcof.errors import ChunkFailedError, CondorcofError, MissingBranchError
from condorcof.events import (
    Events,
    _ChunkReader,
    _leaf_of,
    _plain_leaf,
    make_coffea_events,
    make_events,
)

DATA = Path(os.environ.get("CONDORCOF_DATA", Path(__file__).parents[2] / "shared" / "data"))
START, STOP = 10, 30


def _tree(name: str, treename: str = "Events") -> uproot.TTree:
    path = DATA / name
    if not path.exists():
        pytest.skip(f"test data {path} not found")
    return _open_tree(path, treename)


@functools.cache
def _open_tree(path: Path, treename: str) -> uproot.TTree:
    """Trees stay open for the whole module: events get fresh readers, schemas are reused."""
    return uproot.open(path)[treename]


def _events(name: str, treename: str = "Events", start: int = 0, stop: int | None = None):
    tree = _tree(name, treename)
    stop = tree.num_entries if stop is None else stop
    meta = {
        "dataset": "test",
        "filename": str(DATA / name),
        "treename": treename,
        "entrystart": start,
        "entrystop": stop,
    }
    return make_events(tree, start, stop, meta)


@pytest.fixture
def dy() -> Events:
    return _events("nano_dy.root", start=START, stop=STOP)


@pytest.fixture
def dy_uproot() -> dict[str, ak.Array]:
    names = ["nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass", "Muon_charge", "Jet_pt"]
    names += ["MET_pt", "MET_phi", "HLT_IsoMu24", "run", "event", "luminosityBlock", "genWeight"]
    arrays = _tree("nano_dy.root").arrays(names, entry_start=START, entry_stop=STOP)
    return {name: arrays[name] for name in names}


def test_len_and_metadata_read_nothing(dy: Events) -> None:
    assert isinstance(dy, Events) and isinstance(dy, ak.Array)
    assert len(dy) == STOP - START
    assert dy.metadata["dataset"] == "test" and dy.metadata["entrystart"] == START
    assert "Muon" in dy.fields and "HLT" in dy.fields and "run" in dy.fields
    assert dy.branches_read == set()


def test_muon_pt_reads_only_its_branch(dy: Events) -> None:
    pt = dy.Muon.pt
    ak.sum(pt)
    assert "Muon_pt" in dy.branches_read
    assert dy.branches_read <= {"Muon_pt", "nMuon"}
    assert "Muon_eta" not in dy.branches_read and "Jet_pt" not in dy.branches_read


def test_values_equal_plain_uproot(dy: Events, dy_uproot: dict) -> None:
    assert dy.Muon.pt.tolist() == dy_uproot["Muon_pt"].tolist()
    assert dy.Muon.eta.tolist() == dy_uproot["Muon_eta"].tolist()
    assert dy.Muon.charge.tolist() == dy_uproot["Muon_charge"].tolist()
    assert dy.Jet.pt.tolist() == dy_uproot["Jet_pt"].tolist()
    assert dy.MET.pt.tolist() == dy_uproot["MET_pt"].tolist()
    assert dy.HLT.IsoMu24.tolist() == dy_uproot["HLT_IsoMu24"].tolist()
    for name in ("run", "event", "luminosityBlock", "genWeight", "nMuon"):
        assert dy[name].tolist() == dy_uproot[name].tolist(), name
    assert ak.num(dy.Muon).tolist() == dy_uproot["nMuon"].tolist()
    assert dy["Muon_pt"].tolist() == dy_uproot["Muon_pt"].tolist()  # full branch name


def test_each_branch_read_once(dy: Events, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[str, object]] = []
    array, basket = uproot.TBranch.array, _ChunkReader._basket

    def counting_array(self, *args, **kwargs):
        calls.append((self.name, "array"))
        return array(self, *args, **kwargs)

    def counting_basket(self, branch, basket_num, file):
        calls.append((branch.name, basket_num))
        return basket(self, branch, basket_num, file)

    monkeypatch.setattr(uproot.TBranch, "array", counting_array)
    monkeypatch.setattr(_ChunkReader, "_basket", counting_basket)
    for _ in range(3):
        dy.Muon.pt.tolist()
        dy["Muon_pt"].tolist()
        ak.num(dy.Muon).tolist()
        dy.nMuon.tolist()
    assert {name for name, _ in calls} == {"Muon_pt", "nMuon"}
    assert len(calls) == len(set(calls))  # no basket read twice


def test_chunks_across_baskets_equal_uproot(tmp_path: Path) -> None:
    """Reading basket by basket gives what uproot gives, for ranges that cut baskets."""
    rng = np.random.default_rng(3)
    path = tmp_path / "baskets.root"
    with uproot.recreate(path) as f:
        tree = f.mktree(
            "Events",
            {
                "run": np.uint32,
                "genWeight": np.float32,
                "Muon": "var * {pt: float32, charge: int32, tight: bool}",
                "LHEPdfWeight": "var * float32",
            },
        )
        for size in (7, 0, 13, 1, 9):  # baskets of different sizes, one empty
            counts = rng.integers(0, 4, size)
            total = int(counts.sum())
            muons = ak.zip(
                {
                    "pt": rng.random(total).astype(np.float32),
                    "charge": rng.choice(np.array([-1, 1], np.int32), total),
                    "tight": rng.random(total) < 0.5,
                }
            )
            tree.extend(
                {
                    "run": np.arange(size, dtype=np.uint32),
                    "genWeight": rng.normal(size=size).astype(np.float32),
                    "Muon": ak.unflatten(muons, counts),
                    "LHEPdfWeight": ak.unflatten(
                        rng.random(2 * size).astype(np.float32), np.full(size, 2)
                    ),
                }
            )
    tree = uproot.open(path)["Events"]
    names = ["run", "genWeight", "Muon_pt", "Muon_charge", "Muon_tight", "LHEPdfWeight"]
    for start, stop in [(0, 30), (3, 8), (7, 20), (8, 8), (19, 21), (29, 30), (6, 7)]:
        events = make_events(tree, start, stop, {})
        expected = tree.arrays(names, entry_start=start, entry_stop=stop)
        for name in names:
            assert events[name].tolist() == expected[name].tolist(), (name, start, stop)
        assert ak.num(events.Muon).tolist() == events.nMuon.tolist()


def test_dimuon_mass_matches_numpy(dy: Events, dy_uproot: dict) -> None:
    two = dy[ak.num(dy.Muon) >= 2]
    assert isinstance(two, Events) and two.metadata is dy.metadata
    mass = ak.to_numpy((two.Muon[:, 0] + two.Muon[:, 1]).mass)

    keep = ak.to_numpy(dy_uproot["nMuon"]) >= 2
    assert keep.sum() == len(two) > 0

    def p4(i: int) -> tuple[np.ndarray, ...]:
        pt, eta, phi, m = (
            ak.to_numpy(dy_uproot[f"Muon_{f}"][keep][:, i]).astype(np.float64)
            for f in ("pt", "eta", "phi", "mass")
        )
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)

    (px1, py1, pz1, e1), (px2, py2, pz2, e2) = p4(0), p4(1)
    expected = np.sqrt((e1 + e2) ** 2 - (px1 + px2) ** 2 - (py1 + py2) ** 2 - (pz1 + pz2) ** 2)
    np.testing.assert_allclose(mass, expected, rtol=1e-5)
    assert dy.branches_read <= {"nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass"}


def test_masks_combinations_and_sorting_stay_lazy(dy: Events) -> None:
    muons = dy.Muon[dy.Muon.pt > 20]
    pairs = ak.combinations(muons, 2, fields=["a", "b"])
    mass = (pairs.a + pairs.b).mass
    assert ak.num(mass).tolist() == [n * (n - 1) // 2 for n in ak.num(muons).tolist()]
    ordered = dy.Muon[ak.argsort(dy.Muon.pt, ascending=False)]
    assert all(pts == sorted(pts, reverse=True) for pts in ordered.pt.tolist())
    assert dy.Muon[0:3].pt.tolist() == dy.Muon.pt[0:3].tolist()
    assert dy.branches_read <= {"nMuon", "Muon_pt", "Muon_eta", "Muon_phi", "Muon_mass"}
    assert ak.all(dy.Muon.deltaR(dy.Muon) == 0)


def test_hlt_and_met(dy: Events) -> None:
    assert str(ak.type(dy.HLT.IsoMu24)) == f"{STOP - START} * bool"
    met = dy.MET
    np.testing.assert_allclose(met.px, met.pt * np.cos(met.phi), rtol=1e-6)
    assert ak.all(dy[dy.HLT.IsoMu24].HLT.IsoMu24)


def test_selections_stay_lazy_and_build_only_what_is_used(dy: Events) -> None:
    triggered = dy[dy.HLT.IsoMu24]
    assert isinstance(triggered, Events) and "_lazy" in triggered.__dict__
    two = triggered[ak.num(triggered.Muon) >= 2][1:]
    assert "_lazy" in two.__dict__ and two.metadata is dy.metadata
    expected = dy.Muon.pt[dy.HLT.IsoMu24][ak.num(dy.Muon[dy.HLT.IsoMu24]) >= 2][1:]
    assert two.Muon.pt.tolist() == expected.tolist()
    assert dy.branches_read == {"HLT_IsoMu24", "nMuon", "Muon_pt"}
    # positions (negative too) and slices, as awkward does them
    picked = dy[np.array([3, -1, 0])]
    assert picked.event.tolist() == [dy.event[3], dy.event[-1], dy.event[0]]
    assert dy[::-2].run.tolist() == dy.run[::-2].tolist()
    # what a lazy selection cannot do goes through awkward with every field built
    assert dy[0].event == dy.event[0]
    assert dy[["run", "event"]].fields == ["run", "event"]
    with pytest.raises(IndexError):
        dy[np.array([len(dy)])]


def test_missing_collection_names_file_and_nearest(dy: Events) -> None:
    events = _events("scouting_nano.root")
    with pytest.raises(MissingBranchError) as info:
        events.Muon  # noqa: B018
    message = str(info.value)
    assert "'Muon'" in message and "scouting_nano.root" in message and "ScoutingMuon" in message
    assert isinstance(info.value, CondorcofError) and isinstance(info.value, AttributeError)
    assert not hasattr(events, "Muon") and hasattr(events, "ScoutingMuon")
    with pytest.raises(KeyError, match="ScoutingMuon"):
        events["Muon"]
    with pytest.raises(MissingBranchError, match="did you mean Muon"):
        dy.Muonn  # noqa: B018
    assert len(events.ScoutingMuon.pt) == len(events)


def test_v15_met_renamed_and_missing_jet_id() -> None:
    events = _events("nano_tt_v15.root")
    with pytest.raises(MissingBranchError, match="PFMET") as info:
        events.MET  # noqa: B018
    assert "nano_tt_v15.root" in str(info.value)
    expected = _tree("nano_tt_v15.root")["PFMET_pt"].array(library="np")
    np.testing.assert_array_equal(ak.to_numpy(events.PFMET.pt), expected)
    with pytest.raises(MissingBranchError, match="'jetId' in Jet of tree Events"):
        events.Jet.jetId  # noqa: B018
    assert not hasattr(events.Jet, "jetId") and hasattr(events.Jet, "pt")
    with pytest.raises(MissingBranchError, match="'jetId'"):
        events.Jet[events.Jet.pt > 30].jetId  # noqa: B018
    # v15 has per-branch counters (nMuon_pt) besides nMuon: the collection still works
    assert ak.num(events.Muon.pt).tolist() == events.nMuon.tolist()


def test_zero_muons_everywhere() -> None:
    events = _events("nano_tree.root")
    assert ak.num(events.Muon).tolist() == [0] * len(events)
    assert events.Muon.pt.tolist() == [[]] * len(events)
    assert len(events[ak.num(events.Muon) >= 2]) == 0
    assert ak.num(ak.combinations(events.Muon, 2)).tolist() == [0] * len(events)
    assert len((events.Muon[:, :1] + events.Muon[:, :1]).mass) == len(events)


def test_missing_luminosity_block_and_empty_file() -> None:
    events = _events("missing_luminosityBlock.root")
    assert not hasattr(events, "luminosityBlock")
    assert len(events.run) == 2
    empty = _events("nano_dy_empty.root")
    assert len(empty) == 0 and empty.Muon.pt.tolist() == []


def test_vertex_collection_uses_pt_eta_phi_not_xyz() -> None:
    events = _events("nano_dy.root")
    sv = events.SV
    np.testing.assert_allclose(ak.flatten(sv.px), ak.flatten(sv.pt * np.cos(sv.phi)), rtol=1e-6)
    x = _tree("nano_dy.root")["SV_x"].array()
    assert sv.x.tolist() == x.tolist()  # the vertex position, not vector's x (= px)
    assert ak.flatten(sv.px).tolist() != ak.flatten(sv.x).tolist()
    two = events[(ak.num(sv) > 0) & (ak.num(events.Jet) > 0)]
    np.testing.assert_allclose(
        (two.SV[:, 0] + two.Jet[:, 0]).mass, (two.Jet[:, 0] + two.SV[:, 0]).mass, rtol=1e-4
    )


def test_non_nanoaod_trees_do_not_crash() -> None:
    tm = _events("treemaker.root", "PreSelection")
    expected = _tree("treemaker.root", "PreSelection")["EvtNum"].array(library="np")
    np.testing.assert_array_equal(ak.to_numpy(tm["EvtNum"]), expected)
    assert len(tm["Muons.fCoordinates.fPt"]) == len(tm)

    hzz = _events("uproot-HZZ.root", "events", 0, 100)
    tree = _tree("uproot-HZZ.root", "events")
    px = tree["Muon_Px"].array(entry_stop=100)
    assert hzz.Muon.Px.tolist() == px.tolist()
    assert ak.num(hzz.Muon).tolist() == hzz.NMuon.tolist()

    zmumu = _events("uproot-Zmumu.root", "events", 100, 200)
    expected_m = _tree("uproot-Zmumu.root", "events")["M"].array(
        entry_start=100, entry_stop=200, library="np"
    )
    np.testing.assert_array_equal(ak.to_numpy(zmumu.M), expected_m)
    assert zmumu.Type[:1].tolist() in (["GT"], ["TT"], ["GG"])


def test_other_unreadable_trees_do_not_matter() -> None:
    events = _events("pfnano.root")
    assert len(events.Jet.pt) == 10


def test_entry_range_is_checked() -> None:
    with pytest.raises(ChunkFailedError, match="outside"):
        make_events(_tree("nano_dy.root"), 0, 41, {})


def test_make_coffea_events_needs_coffea() -> None:
    try:
        import coffea  # noqa: F401
    except ImportError:
        with pytest.raises(CondorcofError, match="coffea"):
            make_coffea_events(_tree("nano_dy.root"), 0, 10, {})
    else:
        pytest.skip("coffea is installed")


def test_derived_arrays_pickle_and_keep_behaviour(dy: Events) -> None:
    muons = pickle.loads(pickle.dumps(dy.Muon[ak.num(dy.Muon) >= 2]))
    direct = (dy.Muon[ak.num(dy.Muon) >= 2][:, 0] + dy.Muon[ak.num(dy.Muon) >= 2][:, 1]).mass
    assert (muons[:, 0] + muons[:, 1]).mass.tolist() == direct.tolist()
    both = ak.concatenate([dy.Muon, dy.Muon[dy.Muon.pt > 10]], axis=1)
    assert (
        ak.num(both.px).tolist()
        == (ak.num(dy.Muon) * 2 - ak.sum(dy.Muon.pt <= 10, axis=1)).tolist()
    )


def test_plain_leaves_agree_with_uproot_interpretations() -> None:
    """The fast classification from TLeaf equals the one from uproot's interpretation."""
    checked = 0
    for path in sorted(DATA.glob("*.root")):
        try:
            trees = [k for k, c in uproot.open(path).classnames().items() if c == "TTree"]
        except Exception:  # not a ROOT file with trees (bad_delphes.root)
            continue
        for name in trees:
            tree = _open_tree(path, name.split(";")[0])
            for key in tree.keys():
                branch = tree[key]
                fast = _plain_leaf(key, branch)
                if fast is not None:
                    assert fast == _leaf_of(key, branch.interpretation), (path.name, key)
                    checked += 1
    assert checked > 10_000
