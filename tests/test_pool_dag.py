"""The DAG on the real pool: submit, Docker-universe chunk jobs, merge tree, exact result."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from independent import assert_matches, assert_same_output, expected
from pool import (
    PROCESSOR,
    cli,
    jobstate,
    remove_leftovers,
    require_pool,
    submit,
    wait_for,
    write_fileset,
)

import condorcof
from condorcof.cli import cli as cli_group
from condorcof.plan import load_plan
from condorcof.schedd import get_schedd

pytestmark = pytest.mark.condor
SAMPLES = {
    "DY": ("nano_dy.root", True),
    "Data": ("nano_dimuon.root", False),
    "TT": ("nano_tt_v15.root", True),
    "ggH": ("ggH_M125_amcatnlo_v13.root", True),
    "Empty": ("nano_dy_empty.root", True),
}


@pytest.fixture(scope="module", autouse=True)
def _pool() -> Iterator[None]:
    require_pool()
    yield
    remove_leftovers()


def local_result(tmp_path: Path, fileset: Path, processor: str = PROCESSOR) -> dict:
    out = tmp_path / "local.pkl"
    result = CliRunner().invoke(
        cli_group, ["run", "--quiet", processor, str(fileset), "-o", str(out), "-j", "2"]
    )
    assert result.exit_code == 0, result.output
    return condorcof.load(str(out))


def test_submit_runs_the_dag_in_docker_and_matches_the_local_run(
    tmp_path: Path, data: Path
) -> None:
    fileset = write_fileset(tmp_path / "fileset.json", data, SAMPLES)
    info = submit(
        tmp_path / "runs",
        "dag1",
        fileset,
        "--chunksize",
        "50",
        "--job-events",
        "100",
        "--merge-fanin",
        "2",
    )
    # a second DAGMan over the same outputs is refused while the first is queued
    again = cli("resubmit", info.directory, check=False)
    assert again.returncode != 0 and "still in the queue" in again.stderr
    status = wait_for(info)
    assert status.state == "done", status.to_json()
    assert status.events_processed == status.events_planned == 380
    watched = cli("watch", info.directory, "--interval", "1").stdout
    assert f"result: {info.result}" in watched and "[DONE]" in watched
    listed = cli("list", "--workdir", str(tmp_path / "runs")).stdout
    assert "dag1" in listed and "done" in listed and "380/380 events" in listed

    result = condorcof.load(str(info.result))
    assert_same_output(result, local_result(tmp_path, fileset))
    for name, (f, mc) in SAMPLES.items():
        if name != "Empty":
            assert_matches(result[name], expected(data / f, mc))

    plan = load_plan(info.path / "plan.json")
    history = list(
        get_schedd().history(
            f"DAGManJobId == {info.cluster}",
            ["DAGNodeName", "WantDocker", "DockerImage", "ExitCode"],
        )
    )
    by_node = {ad["DAGNodeName"]: ad for ad in history}
    assert set(by_node) == {j.name for j in plan.jobs} | {m.name for m in plan.merges}
    assert all(
        ad.get("WantDocker") is True and ad.get("DockerImage") == "condorcof/worker:latest"
        for ad in by_node.values()
    )
    events = jobstate(info)
    success = {node: t for t, node, event in events if event == "JOB_SUCCESS"}
    submitted = {node: t for t, node, event in events if event == "SUBMIT"}
    assert len(plan.merges) == 4 and set(success) == set(by_node)
    for merge in plan.merges:  # each merge ran after all of its inputs, as the tree says
        assert all(submitted[merge.name] >= success[parent] for parent in merge.inputs)
    report = condorcof.load_report(str(info.result))
    assert report["complete"] and report["chunks_planned"] == len(plan.chunks)


def test_dry_run_directory_can_be_submitted_by_hand(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, {"DY": ("nano_dy.root", True)})
    out = cli(
        "submit",
        PROCESSOR,
        str(fileset),
        "--workdir",
        str(tmp_path / "runs"),
        "--name",
        "dry",
        "--chunksize",
        "20",
        "--job-events",
        "20",
        "--dry-run",
    )
    assert "nothing submitted" in out.stdout
    run_dir = tmp_path / "runs" / "dry"
    assert not (run_dir / "workflow.dag.condor.sub").exists()
    proc = subprocess.run(
        ["condor_submit_dag", "workflow.dag"], cwd=run_dir, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    deadline = time.monotonic() + 300
    while not (run_dir / "workflow.dag.metrics").exists():
        assert time.monotonic() < deadline, "the hand-submitted DAG did not finish"
        time.sleep(2)
    result = condorcof.load(str(run_dir / "outputs" / "result.pkl"))
    assert_matches(result["DY"], expected(data / "nano_dy.root", True))
