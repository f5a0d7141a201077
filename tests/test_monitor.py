"""Readers of DAGMan's files, on a run recorded from the real pool (tests/recorded/failed_run:
a processor raised on chunk 1 of DY; the three other chunk jobs succeeded)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from condorcof.cli import cli
from condorcof.monitor import (
    apply_event_log,
    parse_node_status,
    read_manifests,
    rescue_failed_nodes,
    rescue_files,
)
from condorcof.rundir import load_run_info
from condorcof.status import collect_status, format_status
from condorcof.workflow import set_node_var, set_retries

RECORDED = Path(__file__).parent / "recorded" / "failed_run"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    """A copy of the recorded run, with run.json pointing at the copy."""
    target = tmp_path / "failed"
    shutil.copytree(RECORDED, target)
    info = json.loads((target / "run.json").read_text())
    info["directory"] = str(target)
    (target / "run.json").write_text(json.dumps(info))
    return target


def test_node_status_file() -> None:
    state = parse_node_status((RECORDED / "workflow.dag.status").read_text())
    assert state.dag_status == 6 and state.finished
    assert state.counts["NodesDone"] == 3 and state.counts["NodesFailed"] == 1
    assert {n: s.status for n, s in state.nodes.items()} == {
        "job_0000": "done",
        "job_0001": "failed",
        "job_0002": "done",
        "job_0003": "done",
        "final": "waiting",
    }
    assert "failed with status 3" in state.nodes["job_0001"].details


def test_rescue_file_lists_the_failed_node() -> None:
    (rescue,) = rescue_files(RECORDED)
    assert rescue.name == "workflow.dag.rescue001"
    assert rescue_failed_nodes(rescue) == ["job_0001"]


def test_event_log_maps_clusters_to_nodes_and_exit_codes() -> None:
    nodes: dict = {}
    apply_event_log(RECORDED, nodes)
    assert set(nodes) == {"job_0000", "job_0001", "job_0002", "job_0003"}
    assert nodes["job_0001"].return_value == 3
    assert all(nodes[n].return_value == 0 for n in ("job_0000", "job_0002", "job_0003"))
    assert len({n.cluster for n in nodes.values()}) == 4


def test_status_from_files_names_the_chunk_file_range_and_cause(run_dir: Path) -> None:
    status = collect_status(load_run_info(run_dir), query_schedd=False)
    assert status.state == "failed"
    assert status.chunks == {
        "done": 3,
        "running": 0,
        "idle": 0,
        "held": 0,
        "failed": 1,
        "waiting": 0,
    }
    assert status.merges["waiting"] == 1
    assert status.datasets == {
        "DY": {"planned": 40, "processed": 20},
        "Data": {"planned": 40, "processed": 40},
    }
    (failed,) = status.failed
    assert failed["node"] == "job_0001" and failed["failure"]["exception"] == "ValueError"
    assert (failed["failure"]["entry_start"], failed["failure"]["entry_stop"]) == (20, 40)
    assert "raise ValueError" in failed["stderr"]
    text = format_status(status)
    assert "no calibration for run 1" in text and "nano_dy.root entries [20, 40)" in text
    assert f"condorcof resubmit {run_dir}" in text
    assert len(read_manifests(run_dir)) == 3


def test_status_command_json(run_dir: Path) -> None:
    result = CliRunner().invoke(cli, ["status", str(run_dir), "--json", "--no-schedd"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert (
        data["state"] == "failed"
        and data["events_processed"] == 60
        and data["events_planned"] == 80
    )


def test_unknown_run_is_a_clear_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["status", str(tmp_path / "nope")])
    assert result.exit_code != 0 and "no run" in result.output


def test_resubmit_overrides_edit_only_the_named_nodes() -> None:
    text = (RECORDED / "workflow.dag").read_text()
    edited = set_node_var(text, "job_0001", "mem", "4000")
    changed = [line for line in edited.splitlines() if line not in text.splitlines()]
    assert (
        len(changed) == 1
        and changed[0].startswith("VARS job_0001 ")
        and changed[0].endswith('mem="4000"')
    )
    assert set_node_var(edited, "job_0001", "mem", "8000").count('mem="') == 1
    retried = set_retries(text, {"job_0001"}, 5)
    assert (
        "RETRY job_0001 5 UNLESS-EXIT 3" in retried and "RETRY job_0000 2 UNLESS-EXIT 3" in retried
    )


def test_peek_merges_returned_partials_with_their_fraction(tmp_path: Path, data: Path) -> None:
    """A run directory whose outputs hold the partials of some jobs, made by the real worker."""
    import condorcof
    from condorcof.jobspec import job_spec
    from condorcof.plan import PlanOptions
    from condorcof.planning import PlanRequest, plan_fileset
    from condorcof.processor import parse_processor_spec
    from condorcof.rundir import write_run
    from condorcof.sites import load_profile
    from condorcof.worker import run_job

    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps({"DY": [str(data / "nano_dy.root")], "Data": [str(data / "nano_dimuon.root")]})
    )
    processor = parse_processor_spec(
        f"{Path(__file__).parents[1] / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"
    )
    _, plan = plan_fileset(PlanRequest(fileset, PlanOptions(chunksize=10, job_events=10)))
    info = write_run(tmp_path / "run", "run", plan, processor, load_profile("local"))
    for job in plan.jobs[:3]:  # three of the eight chunk jobs are back
        run_job(job_spec(plan, job, processor), info.path / "outputs")
    result = CliRunner().invoke(cli, ["peek", info.directory, "-o", str(tmp_path / "peek.pkl")])
    assert result.exit_code == 0, result.output
    report = condorcof.load_report(str(tmp_path / "peek.pkl"))
    assert (
        report["datasets"]["DY"]["fraction"] == 0.75
        and report["datasets"]["Data"]["fraction"] == 0.0
    )
    assert condorcof.load(str(tmp_path / "peek.pkl"))["DY"]["cutflow"]["all"] == 30
    assert "DY" in result.output and "(75%)" in result.output


def test_fast_status_parser_agrees_with_classad2() -> None:
    import classad2

    from condorcof.monitor import parse_ads

    text = (RECORDED / "workflow.dag.status").read_text()
    ours = parse_ads(text)
    theirs = [dict(ad) for ad in classad2.parseAds(text)]
    assert len(ours) == len(theirs) == 7
    for mine, reference in zip(ours, theirs, strict=True):
        for key, value in reference.items():
            if isinstance(value, str | int) and not isinstance(value, bool):
                assert mine[key] == value, key
