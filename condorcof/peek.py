"""Merge the chunk partials a run has returned so far, without touching the running DAG."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from condorcof.dag import OUTPUTS, PLAN_NAME
from condorcof.errors import CondorcofError
from condorcof.jobspec import partial_name
from condorcof.merge import (
    RESULT_FORMAT,
    check_complete,
    coverage_report,
    merge_files,
    write_result,
)
from condorcof.plan import load_plan
from condorcof.rundir import RunInfo


def peek_run(info: RunInfo, output: Path) -> dict[str, Any]:
    """Write the merged accumulator of the finished chunk jobs (no ``postprocess``) and its
    coverage report; returns the report. Only chunk partials are read, so nothing counts twice."""
    plan = load_plan(info.path / PLAN_NAME)
    paths = [
        p for p in (info.path / OUTPUTS / partial_name(j.name) for j in plan.jobs) if p.exists()
    ]
    if not paths:
        raise CondorcofError(f"run {info.name} has returned no partial output yet")
    merged = merge_files(paths)
    report = coverage_report(plan, merged["chunks"], merged["events"], merged.get("skipped"))
    check_complete(plan, report, allow_incomplete=True)  # duplicates are still an error
    write_result(
        {"format": RESULT_FORMAT, "output": merged["accumulator"], "report": report}, output
    )
    return report
