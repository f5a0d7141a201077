"""A probe before fan-out: the processor on a small slice, in the very image the jobs use.

The probe is a one-job run of the same DAG machinery (chunk job + final merge), so it catches
import errors, missing branches and credential problems in a minute, and measures the time and
memory per event from which it suggests the chunk size, the job packing and ``request_memory``.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from condorcof.errors import SubmitError
from condorcof.jobspec import manifest_name
from condorcof.plan import Chunk, Job, Plan, merge_tree
from condorcof.processor import ProcessorSpec
from condorcof.rundir import write_run
from condorcof.sites import SiteProfile
from condorcof.status import collect_status, format_status
from condorcof.workflow import submit_run

JOB_SECONDS = 1800  # a job's target run time: start-up then stays a few percent of it
MEMORY_MARGIN = 1.5


@dataclass(frozen=True)
class ProbeReport:
    """What the probe measured and what it suggests."""

    events: int
    seconds_per_event: float
    setup_seconds: float
    rss_setup_mb: float
    rss_peak_mb: float
    suggested_chunksize: int
    suggested_job_events: int
    suggested_memory_mb: int

    def describe(self) -> str:
        rate = 1.0 / self.seconds_per_event if self.seconds_per_event > 0 else float("inf")
        return (
            f"probe: {self.events} events at {rate:,.0f} ev/s after {self.setup_seconds:.1f} s of set-up; "
            f"memory {self.rss_setup_mb:.0f} MB set up, {self.rss_peak_mb:.0f} MB peak\n"
            f"suggested: --chunksize {self.suggested_chunksize} --job-events {self.suggested_job_events} "
            f"--memory {self.suggested_memory_mb}"
        )


def probe_plan(plan: Plan, events: int) -> Plan:
    """One chunk of at most ``events`` entries from the plan's largest chunk's file."""
    if not plan.chunks:
        raise SubmitError("the plan has no chunk to probe (every file is empty)")
    first = max(plan.chunks, key=lambda c: c.num_entries)
    chunk = Chunk(0, first.dataset, first.path, first.treename, first.entry_start,
                  min(first.entry_stop, first.entry_start + events))  # fmt: skip
    datasets = tuple(ds for ds in plan.datasets if ds.name == first.dataset)
    job = Job("job_0000", 0, 1)
    return Plan(
        plan.options, datasets, (chunk,), (job,), merge_tree([job.name], plan.options.merge_fanin)
    )


def suggest(manifest: dict[str, Any], chunksize: int) -> ProbeReport:
    """Turn the probe job's manifest into suggestions."""
    events = max(int(manifest["events"]), 1)
    timings = manifest["timings"]
    per_event = sum(timings["per_chunk"]) / events
    base = float(timings.get("rss_after_setup_mb", 0.0))
    peak = float(manifest.get("max_rss_mb", base))
    job_events = max(1000, int(JOB_SECONDS / per_event)) if per_event > 0 else 10_000_000
    chunk = min(chunksize, job_events)
    per_event_mb = max(peak - base, 0.0) / events
    memory = (base + per_event_mb * chunk) * MEMORY_MARGIN
    return ProbeReport(
        events=events, seconds_per_event=per_event, setup_seconds=float(timings["setup"]),
        rss_setup_mb=base, rss_peak_mb=peak, suggested_chunksize=chunk,
        suggested_job_events=max(job_events, chunk), suggested_memory_mb=max(512, 128 * math.ceil(memory / 128)),
    )  # fmt: skip


def run_probe(
    plan: Plan,
    processor: ProcessorSpec,
    profile: SiteProfile,
    run_dir: Path,
    events: int = 2000,
    timeout: float = 900,
) -> ProbeReport:
    """Submit the probe, wait for it, and report; a failed probe raises with its status."""
    small = probe_plan(plan, events)
    info = write_run(run_dir, run_dir.name, small, processor, profile, spool=False)
    info = submit_run(info, profile.max_idle, profile.schedd, profile.pool)
    deadline = time.monotonic() + timeout
    while True:
        status = collect_status(info)
        if status.state not in ("running", "unknown (schedd unreachable)"):
            break
        if time.monotonic() > deadline:
            raise SubmitError(f"the probe ({info.directory}) did not finish in {timeout:.0f} s")
        time.sleep(2)
    if status.state != "done":
        raise SubmitError("the probe failed, so nothing was submitted:\n" + format_status(status))
    manifest = json.loads((info.path / "outputs" / manifest_name("job_0000")).read_text())
    report = suggest(manifest, plan.options.chunksize)
    (info.path / "probe.json").write_text(json.dumps(asdict(report), indent=1))
    return report
