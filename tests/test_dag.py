"""The DAG and submit files as text: structure, golden files, and the traps of htcondor.md."""

from __future__ import annotations

import json
import re
import zipfile
from pathlib import Path

import pytest

from condorcof.dag import build_dag, render_config, render_dag, render_submit_files
from condorcof.errors import SiteProfileError, SubmitError
from condorcof.fileset import Dataset, FileSpec
from condorcof.jobspec import read_job_spec
from condorcof.plan import PlanOptions, make_plan
from condorcof.preprocess import FileInfo, Preprocessed
from condorcof.processor import ProcessorSpec
from condorcof.rundir import write_run
from condorcof.sites import available_profiles, load_profile, parse_profile
from condorcof.templates import render

GOLDEN = Path(__file__).parent / "golden"


def small_plan(fanin: int = 2):
    datasets = [
        Dataset("A", (FileSpec("/d/a.root", "Events"),), {"isMC": True}),
        Dataset("B", (FileSpec("/d/b.root", "Events"),), {}),
    ]
    pre = Preprocessed(
        {
            "A": (FileInfo("/d/a.root", "Events", 300, "u"),),
            "B": (FileInfo("/d/b.root", "Events", 100, "v"),),
        },
        (),
    )
    return make_plan(datasets, pre, PlanOptions(chunksize=100, job_events=200, merge_fanin=fanin))


def parse_dag(text: str) -> dict[str, dict]:
    nodes: dict[str, dict] = {}
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "JOB":
            nodes[words[1]] = {"submit": words[2], "parents": [], "vars": ""}
        elif words[0] == "PARENT":
            child = words[words.index("CHILD") + 1]
            nodes[child]["parents"] = words[1 : words.index("CHILD")]
        elif words[0] == "VARS":
            nodes[words[1]]["vars"] = line.split(None, 2)[2]
        elif words[0] == "RETRY":
            nodes[words[1]]["retry"] = words[2:]
    return nodes


def test_dag_has_a_node_per_job_and_merge_with_the_plans_edges() -> None:
    plan = small_plan()
    text = render_dag(build_dag(plan, load_profile("local"), "r1"))
    nodes = parse_dag(text)
    assert set(nodes) == {j.name for j in plan.jobs} | {m.name for m in plan.merges}
    for merge in plan.merges:
        assert nodes[merge.name]["parents"] == list(merge.inputs)
        assert nodes[merge.name]["submit"] == "merge.sub"
    for job in plan.jobs:
        assert nodes[job.name]["submit"] == "chunk.sub" and nodes[job.name]["parents"] == []
        assert nodes[job.name]["retry"] == ["2", "UNLESS-EXIT", "3"]
    assert (
        'merge_args="--final --plan plan.json --processor processor.json"' in nodes["final"]["vars"]
    )
    assert "plan.json, processor.json" in nodes["final"]["vars"]


def test_dag_avoids_the_documented_traps() -> None:
    text = render_dag(build_dag(small_plan(), load_profile("local"), "r1"))
    assert not re.search(r"^FINAL ", text, re.M)  # a FINAL node's success hides failed nodes
    assert "ABORT-DAG-ON" not in text  # without RETURN <= 2 DAGMan restarts forever
    assert "NODE_STATUS_FILE workflow.dag.status" in text
    assert "DAGMAN_MAX_JOBS_IDLE" not in render_config(
        load_profile("local"), "r1"
    )  # overridden anyway


def test_submit_files_transfer_everything_and_never_hold_on_a_crash() -> None:
    files = render_submit_files(load_profile("local"), "r1", ["inputs/corrections.json"])
    chunk, merge = files["chunk.sub"], files["merge.sub"]
    for text in (chunk, merge):
        assert "universe                = docker" in text
        assert "docker_image            = condorcof/worker:latest" in text
        assert "transfer_output_files   = outputs" in text  # a folder the bootstrap always creates
        assert "periodic_remove" in text and "{{" not in text
    assert (
        "transfer_input_files    = bundle.zip, jobs/$(specs), inputs/corrections.json" in chunk
    )
    assert (
        "request_memory          = ifThenElse(isUndefined(NumHoldsByReason.JobOutOfResources), "
        "$(mem:1024), min({$(mem:1024) * pow(2, NumHoldsByReason.JobOutOfResources), 4096}))"
        in chunk
    )
    assert "periodic_release        = (HoldReasonCode =?= 34) && (RequestMemory < 4096)" in chunk


@pytest.mark.parametrize("name", ["workflow.dag", "chunk.sub", "merge.sub", "dagman.config"])
def test_golden_files(tmp_path: Path, name: str) -> None:
    """Reviewed by hand once; a change to the generated text must be a deliberate one."""
    spec = ProcessorSpec("proc", "Proc", {}, None)
    write_run(tmp_path / "r1", "r1", small_plan(), spec, load_profile("local"))
    assert (tmp_path / "r1" / name).read_text() == (GOLDEN / f"local.{name}").read_text()


def test_run_directory_is_complete_and_private(tmp_path: Path) -> None:
    folder = Path(__file__).parents[1] / "examples"
    spec = ProcessorSpec("dimuon_vbf", "DimuonVBF", {}, str(folder))
    plan = small_plan()
    info = write_run(tmp_path / "r2", "r2", plan, spec, load_profile("local"))
    run = Path(info.directory)
    assert run.stat().st_mode & 0o077 == 0
    assert sorted(p.name for p in (run / "jobs").iterdir()) == ["specs_00000.json"]
    shard = json.loads((run / "jobs" / "specs_00000.json").read_text())
    specs = [read_job_spec(shard, j.name) for j in plan.jobs]
    assert [s.chunks for s in specs] == [plan.chunks_of(j) for j in plan.jobs]
    assert all(s.transferred == tuple(sorted({c.path for c in s.chunks})) for s in specs)
    names = zipfile.ZipFile(run / "bundle.zip").namelist()
    assert {
        "__main__.py",
        "condorcof/worker.py",
        "condorcof/merge.py",
        "user/dimuon_vbf.py",
        "user/analysis_helpers.py",
    } <= set(names)
    with pytest.raises(SubmitError, match="already exists"):
        write_run(run, "r2", plan, spec, load_profile("local"))


def test_site_profiles_validate() -> None:
    assert "local" in available_profiles()
    with pytest.raises(SiteProfileError, match="did you mean local"):
        load_profile("locall")
    with pytest.raises(SiteProfileError, match="unknown setting 'request_memroy'.*request_memory"):
        parse_profile("x", "[resources]\nrequest_memroy = 5\n")
    with pytest.raises(SiteProfileError, match="set by condorcof"):
        parse_profile("x", '[submit]\nexecutable = "/bin/sh"\n')
    with pytest.raises(SiteProfileError, match="not allowed; did you mean requirements"):
        parse_profile("x", '[submit]\nrequirments = "true"\n')
    with pytest.raises(SiteProfileError, match="must be a int"):
        parse_profile("x", '[resources]\nrequest_cpus = "two"\n')
    assert (
        load_profile("local").with_overrides(request_memory=3000, image=None).request_memory == 3000
    )


def test_templates_refuse_missing_and_unused_values() -> None:
    with pytest.raises(SubmitError, match=r"missing values \['b'\]"):
        render("{{ a }} {{ b }}", {"a": 1})
    with pytest.raises(SubmitError, match=r"unused values \['c'\]"):
        render("{{ a }}", {"a": 1, "c": 2})
    assert render("$(JOB) {x} {{a}}", {"a": 1}) == "$(JOB) {x} 1"
