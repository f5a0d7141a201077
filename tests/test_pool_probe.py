"""The probe on the real pool: a processor that cannot run in the image stops the submission;
a good one is measured and the DAG follows."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from pool import PROCESSOR, SUBMITTED, cli, remove_leftovers, require_pool, write_fileset

from condorcof.probe import suggest
from condorcof.rundir import load_run_info


@pytest.fixture
def _pool() -> Iterator[None]:
    require_pool()
    yield
    remove_leftovers()


def test_suggestions_scale_with_the_measurements() -> None:
    manifest = {
        "events": 1000,
        "max_rss_mb": 300.0,
        "timings": {"per_chunk": [0.1], "setup": 0.5, "rss_after_setup_mb": 200.0},
    }
    report = suggest(manifest, chunksize=100_000)
    assert report.seconds_per_event == pytest.approx(1e-4)
    assert report.suggested_job_events == 18_000_000  # 1800 s at 10k events/s
    assert report.suggested_chunksize == 100_000
    # 200 MB base + 0.1 MB/event * 100k events, with a 1.5 margin, in 128 MB steps
    assert report.suggested_memory_mb == 128 * -(-(200 + 0.1 * 100_000) * 1.5 // 128)


@pytest.mark.condor
def test_probe_stops_a_broken_processor_and_measures_a_good_one(
    _pool: None, tmp_path: Path, data: Path
) -> None:
    fileset = write_fileset(tmp_path / "fs.json", data, {"TT": ("nano_tt_v15.root", True)})
    broken = tmp_path / "needs_scipy.py"
    broken.write_text(
        "import scipy.special  # not in the worker image\n\nclass P:\n"
        "    def process(self, events):\n        return {}\n"
    )
    bad = cli(
        "submit",
        f"{broken}:P",
        str(fileset),
        "--workdir",
        str(tmp_path / "runs"),
        "--name",
        "bad",
        "--probe",
        check=False,
    )
    assert bad.returncode != 0 and "probe failed" in bad.stderr and "scipy" in bad.stderr
    assert not (tmp_path / "runs" / "bad").exists()  # the real run was never written

    good = cli(
        "submit",
        PROCESSOR,
        str(fileset),
        "--workdir",
        str(tmp_path / "runs"),
        "--name",
        "good",
        "--probe",
        "--chunksize",
        "100",
    )
    assert "suggested: --chunksize" in good.stderr and "submitted: DAGMan job" in good.stdout
    SUBMITTED.append(load_run_info(tmp_path / "runs" / "good").cluster)  # removed at teardown
    probe = json.loads((tmp_path / "runs" / "good-probe" / "probe.json").read_text())
    assert probe["events"] == 100 and probe["rss_peak_mb"] > 50 and probe["seconds_per_event"] > 0
