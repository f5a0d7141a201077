"""Spooled submission on the real pool: the run directory is unreadable while the DAG runs, so
the jobs provably see only what HTCondor transferred; fetch brings back the exact result."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from independent import assert_matches, expected
from pool import cli, remove_leftovers, require_pool, submit, write_fileset

import condorcof
from condorcof.rundir import load_run_info
from condorcof.schedd import get_schedd, query_job

pytestmark = pytest.mark.condor


def schedd_name() -> str:
    import htcondor2

    return str(
        htcondor2.Collector("127.0.0.1:9618").locateAll(htcondor2.DaemonType.Schedd)[0]["Name"]
    )


@pytest.fixture(scope="module", autouse=True)
def _pool() -> Iterator[None]:
    require_pool()
    yield
    remove_leftovers()


def test_spooled_run_needs_nothing_from_the_submit_side(tmp_path: Path, data: Path) -> None:
    samples = {"DY": ("nano_dy.root", True), "Data": ("nano_dimuon.root", False)}
    fileset = write_fileset(tmp_path / "fs.json", data, samples)
    info = submit(
        tmp_path / "runs",
        "spooled",
        fileset,
        "--chunksize",
        "20",
        "--job-events",
        "20",
        "--merge-fanin",
        "2",
        "--spool",
        "--schedd",  # an access point found through the collector, as a remote one would be
        schedd_name(),
        "--pool",
        "127.0.0.1:9618",
    )
    assert info.spool and info.schedd == schedd_name() and info.pool == "127.0.0.1:9618"
    os.chmod(info.path, 0)  # nobody on this machine may read the run directory now
    try:
        deadline = time.monotonic() + 400
        while (query_job(get_schedd(), info.cluster, ["JobStatus"]) or {}).get("JobStatus") != 4:
            assert time.monotonic() < deadline, "the spooled DAG did not finish"
            time.sleep(3)
    finally:
        os.chmod(info.path, 0o700)
    assert not info.result.exists()
    status = cli("status", info.directory).stdout
    assert "FINISHED (FETCH)" in status and "condorcof fetch" in status
    out = cli("fetch", info.directory).stdout
    assert "result:" in out
    result = condorcof.load(str(load_run_info(info.path).result))
    for name, (f, mc) in samples.items():
        assert_matches(result[name], expected(data / f, mc))
    assert condorcof.load_report(str(info.result))["complete"]
    assert query_job(get_schedd(), info.cluster, ["JobStatus"]) is None  # fetch cleared the queue
    assert "DONE" in cli("status", info.directory).stdout
