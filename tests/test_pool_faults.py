"""Fault tests on the real pool: each ends with the exact result of a fault-free run and no chunk
counted twice (the final merge proves it)."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from independent import assert_same_output
from pool import cli, remove_leftovers, require_pool, submit, wait_for, write_fileset

import condorcof
from condorcof.cli import cli as cli_group
from condorcof.monitor import read_node_status
from condorcof.rundir import RunInfo, load_run_info
from condorcof.schedd import get_schedd, query_node_jobs

pytestmark = pytest.mark.condor
SAMPLES = {"DY": ("nano_dy.root", True), "Data": ("nano_dimuon.root", False)}
PROCESSOR_CODE = """
import time
import awkward as ak
import hist
import numpy as np

RAISE_ON = {raise_on!r}       # (dataset, entrystart) that fails
SLEEP = {sleep!r}             # seconds per chunk
ALLOCATE_MB = {allocate!r}    # memory touched on the chunk in RAISE_ON (when not raising)


class Faulty:
    def process(self, events):
        meta = events.metadata
        key = (meta["dataset"], meta["entrystart"])
        if RAISE_ON is not None and key == tuple(RAISE_ON) and not ALLOCATE_MB:
            raise ValueError("no calibration for run %d" % int(events.run[0]))
        if ALLOCATE_MB and RAISE_ON is not None and key == tuple(RAISE_ON):
            block = np.ones(ALLOCATE_MB * 1024 * 1024 // 8)
            time.sleep(8)
            del block
        time.sleep(SLEEP)
        h = hist.Hist.new.Reg(20, 0, 200, name="pt").Weight()
        h.fill(pt=ak.flatten(events.Muon.pt))
        return {{meta["dataset"]: {{"pt": h, "n": len(events)}}}}

    def postprocess(self, acc):
        return acc
"""


@pytest.fixture(scope="module", autouse=True)
def _pool() -> Iterator[None]:
    require_pool()
    yield
    remove_leftovers()


def write_processor(folder: Path, raise_on=None, sleep: float = 0.0, allocate: int = 0) -> str:
    folder.mkdir(exist_ok=True)
    (folder / "faulty.py").write_text(
        PROCESSOR_CODE.format(raise_on=raise_on, sleep=sleep, allocate=allocate)
    )
    return f"{folder / 'faulty.py'}:Faulty"


def reference(tmp_path: Path, fileset: Path) -> dict:
    """The fault-free result, computed locally."""
    proc = write_processor(tmp_path / "reference")
    out = tmp_path / "reference.pkl"
    result = CliRunner().invoke(
        cli_group, ["run", "--quiet", proc, str(fileset), "-o", str(out), "--chunksize", "20"]
    )
    assert result.exit_code == 0, result.output
    return condorcof.load(str(out))


def assert_exact(info: RunInfo, expected: dict) -> None:
    info = load_run_info(info.path)
    assert_same_output(condorcof.load(str(info.result)), expected)
    report = condorcof.load_report(str(info.result))
    assert report["complete"] and not report["duplicated"] and not report["missing"]


def running_node_jobs(info: RunInfo) -> list[dict]:
    return [
        ad
        for ad in query_node_jobs(
            get_schedd(), info.cluster, ["ClusterId", "DAGNodeName", "JobStatus"]
        )
        if ad.get("JobStatus") == 2 and str(ad.get("DAGNodeName", "")).startswith("job_")
    ]


def wait_until(condition, timeout: float = 240, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(1)


def test_processor_bug_shows_in_status_then_fix_and_resubmit(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, SAMPLES)
    proc = write_processor(tmp_path / "analysis", raise_on=("DY", 20))
    info = submit(
        tmp_path / "runs", "bug", fileset, "--chunksize", "20", "--job-events", "20", processor=proc
    )
    status = wait_for(info)
    assert status.state == "failed"
    (failed,) = status.failed
    record = failed["failure"]
    assert record["exception"] == "ValueError" and "no calibration for run" in record["message"]
    assert record["file"].endswith("nano_dy.root") and (
        record["entry_start"],
        record["entry_stop"],
    ) == (20, 40)
    assert failed["retries"] == 0, "a deterministic failure must not burn retries"
    text = cli("status", info.directory).stdout
    assert "ValueError" in text and "nano_dy.root entries [20, 40)" in text and "resubmit" in text

    write_processor(tmp_path / "analysis")  # the fix
    out = cli("resubmit", info.directory).stdout
    assert "rerunning 1 failed node(s) (job_0001)" in out
    status = wait_for(info)
    assert status.state == "done", status.to_json()
    assert_exact(info, reference(tmp_path, fileset))


def test_job_over_its_memory_comes_back_with_more(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, {"DY": ("nano_dy.root", True)})
    # every other test job asks for 1024 MB, so no claim of more than that can be reused here
    proc = write_processor(tmp_path / "analysis", raise_on=("DY", 0), allocate=1300)
    info = submit(
        tmp_path / "runs",
        "mem",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "20",
        "--memory",
        "1024",
        processor=proc,
    )
    status = wait_for(info, timeout=480)
    assert status.state == "done", status.to_json()
    log = (info.path / "workflow.dag.nodes.log").read_text()
    assert "Job was held" in log and "memory" in log.lower()
    history = {
        ad["DAGNodeName"]: ad
        for ad in get_schedd().history(
            f"DAGManJobId == {info.cluster}", ["DAGNodeName", "RequestMemory", "NumHoldsByReason"]
        )
    }
    assert (
        history["job_0000"].eval("RequestMemory")
        >= 2048
        > history["job_0001"].eval("RequestMemory")
    )
    assert_exact(info, reference(tmp_path, fileset))


def test_removed_dag_is_completed_by_resubmit(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, SAMPLES)
    proc = write_processor(tmp_path / "analysis", sleep=4)
    info = submit(
        tmp_path / "runs",
        "rm",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "20",
        "--max-idle",
        "2",
        processor=proc,
    )
    wait_for(info, until=("done",))
    cli("remove", info.directory)
    status = wait_for(info)
    assert status.state in ("removed", "failed", "stopped") and status.result is None
    assert 0 < status.chunks["done"] < 4
    cli("resubmit", info.directory)
    status = wait_for(info)
    assert status.state == "done", status.to_json()
    assert_exact(info, reference(tmp_path, fileset))


def test_removed_node_job_is_retried(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, SAMPLES)
    proc = write_processor(tmp_path / "analysis", sleep=15)
    info = submit(
        tmp_path / "runs",
        "node",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "40",
        processor=proc,
    )
    wait_until(lambda: running_node_jobs(info), what="a running chunk job")
    victim = running_node_jobs(info)[0]
    subprocess.run(["condor_rm", str(victim["ClusterId"])], check=True, capture_output=True)
    status = wait_for(info)
    assert status.state == "done", status.to_json()
    dag = read_node_status(info.path)
    assert dag is not None and dag.nodes[victim["DAGNodeName"]].retries >= 1
    assert_exact(info, reference(tmp_path, fileset))


def test_schedd_restart_mid_run_is_survived(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, SAMPLES)
    proc = write_processor(tmp_path / "analysis", sleep=6)
    info = submit(
        tmp_path / "runs",
        "restart",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "20",
        processor=proc,
    )
    wait_until(lambda: running_node_jobs(info), what="a running chunk job")
    restart = subprocess.run(["condor_restart", "-schedd"], capture_output=True, text=True)
    assert restart.returncode == 0, restart.stderr
    time.sleep(5)
    status = wait_for(info, timeout=480)
    assert status.state == "done", status.to_json()
    assert_exact(info, reference(tmp_path, fileset))


def test_bad_input_file_is_left_out_on_request(tmp_path: Path, data: Path) -> None:
    broken = tmp_path / "broken.root"
    broken.write_bytes(b"not a ROOT file at all " * 1000)
    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps(
            {
                "DY": {"files": {str(data / "nano_dy.root"): "Events"}, "metadata": {"isMC": True}},
                # preprocessed form: the entry count is trusted, so the damage shows only in the job
                "Broken": {
                    "files": {
                        str(broken): {"object_path": "Events", "num_entries": 40, "uuid": "x"}
                    }
                },
            }
        )
    )
    proc = write_processor(tmp_path / "analysis")
    info = submit(
        tmp_path / "runs",
        "badfile",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "40",
        processor=proc,
    )
    status = wait_for(info)
    assert status.state == "failed"
    (failed,) = status.failed
    assert failed["failure"]["file"] == str(broken) and failed["retries"] == 0
    out = cli("resubmit", info.directory, "--skip-bad-files").stdout
    assert f"leaving out {broken}" in out
    status = wait_for(info)
    assert status.state == "done", status.to_json()
    report = condorcof.load_report(str(info.result))
    assert [f["path"] for f in report["skipped_files"]] == [str(broken)]
    assert (
        report["datasets"]["Broken"]["fraction"] == 0.0
        and report["datasets"]["DY"]["fraction"] == 1.0
    )
    good = write_fileset(tmp_path / "good.json", data, {"DY": ("nano_dy.root", True)})
    assert_same_output(condorcof.load(str(info.result)), reference(tmp_path, good))
