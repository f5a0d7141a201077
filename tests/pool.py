"""Helpers for tests on the real HTCondor pool (started by .ci/pool-up)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from condorcof.rundir import RunInfo, load_run_info
from condorcof.status import RunStatus, collect_status

EXE = Path(sys.executable).parent / "condorcof"
REPO = Path(__file__).resolve().parents[1]
PROCESSOR = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"


def require_pool(attempts: int = 15) -> None:
    """Fail (never skip) when the pool cannot be used, saying how to get one."""
    if os.geteuid() == 0:
        pytest.fail(
            "pool tests must run as an unprivileged user (the schedd refuses root): use .ci/test"
        )
    import htcondor2

    for attempt in range(attempts):  # the schedd may be restarting (a fault test restarts it)
        try:
            htcondor2.Schedd().query("false", ["ClusterId"])
            return
        except Exception as err:
            if attempt == attempts - 1:
                pytest.fail(
                    f"no HTCondor pool reachable ({err}); start it with .ci/pool-up or deselect -m 'not condor'"
                )
            time.sleep(2)


def cli(*args: str, check: bool = True, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    """Run the installed ``condorcof`` command."""
    proc = subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"condorcof {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


SUBMITTED: list[int] = []  # DAGMan clusters of this session, removed at teardown if still queued


def submit(
    workdir: Path, name: str, fileset: Path, *options: str, processor: str = PROCESSOR
) -> RunInfo:
    cli("submit", processor, str(fileset), "--workdir", str(workdir), "--name", name, *options)
    info = load_run_info(workdir / name)
    assert info.cluster is not None
    SUBMITTED.append(info.cluster)
    return info


def remove_leftovers() -> None:
    """Remove DAGs a failed test left in the queue, so they cannot disturb the next test."""
    import htcondor2

    while SUBMITTED:
        cluster = SUBMITTED.pop()
        try:
            htcondor2.Schedd().act(
                htcondor2.JobAction.Remove, f"ClusterId == {cluster}", reason="test teardown"
            )
        except Exception:  # already gone, or the schedd is restarting: nothing to clean
            pass


def wait_for(info: RunInfo, timeout: float = 400, until: tuple[str, ...] = ()) -> RunStatus:
    """Poll the run until DAGMan has left the queue (or ``until`` says stop); returns the status."""
    deadline = time.monotonic() + timeout
    while True:
        status = collect_status(load_run_info(info.path))
        live = status.state in ("running", "unknown (schedd unreachable)")  # e.g. while it restarts
        if not live or (until and _matches(status, until)):
            return status
        if time.monotonic() > deadline:
            raise AssertionError(
                f"run {info.name} still running after {timeout} s:\n{json.dumps(status.to_json())}"
            )
        time.sleep(2)


def _matches(status: RunStatus, until: tuple[str, ...]) -> bool:
    return any(status.chunks.get(column, 0) + status.merges.get(column, 0) > 0 for column in until)


def write_fileset(path: Path, data: Path, samples: dict[str, tuple[str, bool]]) -> Path:
    fileset = {
        name: {"files": {str(data / f): "Events"}, "metadata": {"isMC": mc}}
        for name, (f, mc) in samples.items()
    }
    path.write_text(json.dumps(fileset))
    return path


def jobstate(info: RunInfo) -> list[tuple[int, str, str]]:
    """(time, node, event) from DAGMan's jobstate log."""
    rows = []
    for line in (info.path / "workflow.dag.jobstate.log").read_text().splitlines():
        words = line.split()
        if len(words) >= 3 and words[1] != "INTERNAL":
            rows.append((int(words[0]), words[1], words[2]))
    return rows
