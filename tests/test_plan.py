from __future__ import annotations

import json
from pathlib import Path

import pytest

from condorcof.errors import PlanError
from condorcof.fileset import Dataset, FileSpec
from condorcof.plan import (
    FINAL_NODE,
    PlanOptions,
    load_plan,
    make_plan,
    merge_tree,
    plan_from_json,
    plan_to_json,
    save_plan,
    split_entries,
)
from condorcof.preprocess import FileInfo, Preprocessed, SkippedFile


@pytest.mark.parametrize("n", [0, 1, 7, 99, 100, 101, 149, 150, 151, 2304, 100_003])
@pytest.mark.parametrize("size", [1, 3, 100, 1000])
def test_split_entries_covers_every_entry_once_evenly(n: int, size: int) -> None:
    ranges = split_entries(n, size)
    assert sum(b - a for a, b in ranges) == n
    assert all(ranges[i][1] == ranges[i + 1][0] for i in range(len(ranges) - 1))
    if ranges:
        assert ranges[0][0] == 0 and ranges[-1][1] == n
        sizes = [b - a for a, b in ranges]
        assert max(sizes) - min(sizes) <= 1
        assert len(ranges) == max(round(n / size), 1)


def _pre(entries: dict[str, list[int]]) -> tuple[list[Dataset], Preprocessed]:
    datasets = [
        Dataset(ds, tuple(FileSpec(f"/{ds}/{i}.root", "Events") for i in range(len(n))), {"ds": ds})
        for ds, n in entries.items()
    ]
    files = {
        ds: tuple(FileInfo(f"/{ds}/{i}.root", "Events", k, "u") for i, k in enumerate(n))
        for ds, n in entries.items()
    }
    return datasets, Preprocessed(files, (SkippedFile("A", "/bad.root", "Events", "broken"),))


def test_plan_chunks_never_cross_files_and_jobs_pack_one_dataset() -> None:
    datasets, pre = _pre({"A": [250, 0, 40], "B": [1000]})
    plan = make_plan(datasets, pre, PlanOptions(chunksize=100, job_events=300))
    assert [c.index for c in plan.chunks] == list(range(len(plan.chunks)))
    per_file = {}
    for c in plan.chunks:
        per_file.setdefault(c.path, []).append((c.entry_start, c.entry_stop))
    assert per_file["/A/0.root"] == [(0, 125), (125, 250)]
    assert "/A/1.root" not in per_file  # zero entries: no chunk
    assert plan.events_per_dataset() == {"A": 290, "B": 1000}
    for job in plan.jobs:
        chunks = plan.chunks_of(job)
        assert len({c.dataset for c in chunks}) == 1
        assert sum(c.num_entries for c in chunks) <= 300 or len(chunks) == 1
    assert sorted(i for j in plan.jobs for i in j.chunk_indices) == list(range(len(plan.chunks)))


def test_max_chunks_is_per_dataset() -> None:
    datasets, pre = _pre({"A": [1000], "B": [1000]})
    plan = make_plan(datasets, pre, PlanOptions(chunksize=100, max_chunks=3))
    assert plan.events_per_dataset() == {"A": 300, "B": 300}


def test_steps_from_a_preprocessed_fileset_are_honoured() -> None:
    datasets = [Dataset("A", (FileSpec("/a.root", "Events", 40, "u", ((0, 10), (10, 40))),), {})]
    pre = Preprocessed({"A": (FileInfo("/a.root", "Events", 40, "u"),)}, ())
    plan = make_plan(datasets, pre, PlanOptions(chunksize=5))
    assert [(c.entry_start, c.entry_stop) for c in plan.chunks] == [(0, 10), (10, 40)]


@pytest.mark.parametrize("leaves", [1, 2, 15, 16, 17, 255, 256, 257, 1000])
@pytest.mark.parametrize("fanin", [2, 3, 16])
def test_merge_tree_reaches_every_leaf_once_with_bounded_fanin(leaves: int, fanin: int) -> None:
    names = [f"job_{i}" for i in range(leaves)]
    nodes = merge_tree(names, fanin)
    assert nodes[-1].name == FINAL_NODE
    assert all(len(n.inputs) <= fanin for n in nodes)
    consumed = [i for n in nodes for i in n.inputs]
    produced = {n.name for n in nodes}
    assert len(consumed) == len(set(consumed))
    assert set(consumed) == set(names) | (produced - {FINAL_NODE})
    order = {n.name: k for k, n in enumerate(nodes)}
    assert all(order[i] < order[n.name] for n in nodes for i in n.inputs if i in order)


def test_plan_json_round_trip_is_exact(tmp_path: Path) -> None:
    datasets, pre = _pre({"A": [250, 0, 40], "B": [1000]})
    plan = make_plan(datasets, pre, PlanOptions(chunksize=100, job_events=300, merge_fanin=2))
    save_plan(plan, tmp_path / "plan.json")
    again = load_plan(tmp_path / "plan.json")
    assert again == plan
    assert plan_to_json(again) == json.loads((tmp_path / "plan.json").read_text())
    assert make_plan(datasets, pre, plan.options) == plan  # reproducible


def test_bad_options_and_plans_are_errors() -> None:
    with pytest.raises(PlanError, match="chunksize"):
        PlanOptions(chunksize=0)
    with pytest.raises(PlanError, match="merge_fanin"):
        PlanOptions(merge_fanin=1)
    with pytest.raises(PlanError, match="not a condorcof plan"):
        plan_from_json({"format": "other"})
