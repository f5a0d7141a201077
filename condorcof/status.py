"""``condorcof status``: one picture of a run from the run directory and the schedd.

The node status file and the node event log give the live state (the schedd's ``DAG_*``
counters lag by minutes); the schedd says whether DAGMan is still queued and what holds
its node jobs; manifests and failure records say what was processed and what went wrong.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from condorcof.errors import CondorcofError
from condorcof.monitor import (
    NodeState,
    apply_event_log,
    read_failure,
    read_node_status,
    rescue_files,
    stderr_tail,
)
from condorcof.progress import bar, format_count, format_duration
from condorcof.rundir import RunInfo, read_summary
from condorcof.schedd import get_schedd, query_job, query_node_jobs

COLUMNS = ("done", "running", "idle", "held", "failed", "waiting")
NODE_JOB_ATTRS = ["ClusterId", "DAGNodeName", "JobStatus", "HoldReason", "HoldReasonCode", "RequestMemory",
                  "MemoryUsage", "NumJobStarts", "RemoteHost"]  # fmt: skip


@dataclass
class RunStatus:
    """Everything ``status`` shows, as plain data (``--json`` prints it)."""

    name: str
    directory: str
    cluster: int | None
    state: str = "unknown"
    schedd_error: str | None = None
    elapsed: float = 0.0
    chunks: dict[str, int] = field(default_factory=dict)
    merges: dict[str, int] = field(default_factory=dict)
    datasets: dict[str, dict[str, int]] = field(default_factory=dict)
    events_planned: int = 0
    events_processed: int = 0
    rate: float = 0.0
    eta: float | None = None
    held: list[dict[str, Any]] = field(default_factory=list)
    failed: list[dict[str, Any]] = field(default_factory=list)
    rescue_dags: list[str] = field(default_factory=list)
    result: str | None = None
    spool: bool = False
    dagman_status: int | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def node_column(node: NodeState) -> str:
    """Which column of the table a node belongs to."""
    if node.status == "done":
        return "done"
    if node.status in ("failed",):
        return "failed"
    if node.status in ("submitted", "prerun", "postrun"):
        if node.held:
            return "held"
        return "running" if node.running else "idle"
    return "waiting"


def collect_status(info: RunInfo, query_schedd: bool = True) -> RunStatus:
    """Gather the run's state; a schedd that cannot be reached is reported, not fatal."""
    run_dir = info.path
    summary = read_summary(run_dir)
    status = RunStatus(info.name, info.directory, info.cluster, spool=info.spool)
    dag_file = read_node_status(run_dir)
    nodes = {name: NodeState(name) for name in (*summary["jobs"], *summary["merges"])}
    if dag_file:
        nodes.update(dag_file.nodes)
    apply_event_log(run_dir, nodes)
    in_queue = (
        _apply_schedd(info, nodes, status) if query_schedd and info.cluster is not None else None
    )
    _count_nodes(summary, nodes, status)
    _count_events(summary, nodes, status, info)
    _collect_problems(run_dir, nodes, status)
    status.rescue_dags = [p.name for p in rescue_files(run_dir)]
    status.result = str(info.result) if info.result.exists() else None
    status.state = _overall_state(info, in_queue, dag_file.dag_status if dag_file else None, status)
    return status


def _apply_schedd(info: RunInfo, nodes: dict[str, NodeState], status: RunStatus) -> bool | None:
    try:
        schedd = get_schedd(info.schedd, info.pool)
        dagman = query_job(schedd, info.cluster)  # type: ignore[arg-type]
        jobs = query_node_jobs(schedd, info.cluster, NODE_JOB_ATTRS) if dagman else []  # type: ignore[arg-type]
    except CondorcofError as err:
        status.schedd_error = str(err)
        return None
    status.dagman_status = dagman.get("JobStatus") if dagman else None
    for ad in jobs:
        node = nodes.get(str(ad.get("DAGNodeName", "")))
        if node is None:
            continue
        node.status = "submitted"
        node.held = ad.get("JobStatus") == 5
        node.running = ad.get("JobStatus") == 2
        node.hold_reason = str(ad.get("HoldReason", "")) if node.held else ""
        node.hold_code = ad.get("HoldReasonCode") if node.held else None
        node.request_memory = ad.get("RequestMemory", node.request_memory)
        node.cluster = ad.get("ClusterId", node.cluster)
    return dagman is not None


def _count_nodes(summary: dict[str, Any], nodes: dict[str, NodeState], status: RunStatus) -> None:
    jobs = summary["jobs"]
    status.chunks = dict.fromkeys(COLUMNS, 0)
    status.merges = dict.fromkeys(COLUMNS, 0)
    for name, node in nodes.items():
        (status.chunks if name in jobs else status.merges)[node_column(node)] += 1


def _count_events(
    summary: dict[str, Any], nodes: dict[str, NodeState], status: RunStatus, info: RunInfo
) -> None:
    """Events of the chunk jobs that are done (a done job read exactly its planned events)."""
    planned = summary["datasets"]
    done = dict.fromkeys(planned, 0)
    for name, per_dataset in summary["jobs"].items():
        if nodes[name].status == "done":
            for dataset, events in per_dataset.items():
                done[dataset] += events
    status.datasets = {ds: {"planned": planned[ds], "processed": done[ds]} for ds in planned}
    status.events_planned = sum(planned.values())
    status.events_processed = sum(done.values())
    if info.submitted:
        status.elapsed = time.time() - info.submitted
        status.rate = status.events_processed / status.elapsed if status.elapsed > 0 else 0.0
        remaining = status.events_planned - status.events_processed
        status.eta = remaining / status.rate if status.rate > 0 else None


def _collect_problems(run_dir: Any, nodes: dict[str, NodeState], status: RunStatus) -> None:
    for name, node in sorted(nodes.items()):
        if node.held:
            status.held.append(
                {
                    "node": name,
                    "cluster": node.cluster,
                    "code": node.hold_code,
                    "reason": node.hold_reason,
                    "request_memory": node.request_memory,
                }
            )
        if node.status == "failed":
            entry: dict[str, Any] = {
                "node": name,
                "details": node.details,
                "retries": node.retries,
                "return_value": node.return_value,
            }
            record = read_failure(run_dir, name)
            if record:
                entry["failure"] = {
                    k: record.get(k)
                    for k in (
                        "exception",
                        "message",
                        "dataset",
                        "file",
                        "entry_start",
                        "entry_stop",
                        "index",
                        "host",
                        "image",
                        "transient",
                    )
                }
            entry["stderr"] = stderr_tail(run_dir, name)
            status.failed.append(entry)


def _overall_state(
    info: RunInfo, in_queue: bool | None, dag_status: int | None, status: RunStatus
) -> str:
    if info.cluster is None:
        return "not submitted"
    if in_queue and info.spool and status.dagman_status == 4:
        return "finished (fetch)"
    if in_queue:
        return "running"
    if status.result and not status.failed:
        return "done"
    if status.failed:
        return "failed"
    if dag_status == 6 or dag_status == 4:
        return "removed"
    if in_queue is None:
        return "unknown (schedd unreachable)"
    return "stopped"


def format_status(status: RunStatus) -> str:
    """The human-readable picture."""
    lines = [
        f"run {status.name}  [{status.state.upper()}]  DAGMan job {status.cluster}  ({status.directory})"
    ]
    if status.spool and not status.result:
        lines.append("  spooled run: node files stay in the schedd's spool until 'condorcof fetch'")
    if status.state == "finished (fetch)":
        lines.append(f"  bring the outputs back with: condorcof fetch {status.directory}")
    if status.schedd_error:
        lines.append(
            f"  note: the schedd could not be asked ({status.schedd_error}); showing files only"
        )
    lines.append(f"  {'nodes':8}" + "".join(f"{c:>9}" for c in COLUMNS))
    for label, counts in (("chunks", status.chunks), ("merges", status.merges)):
        lines.append(f"  {label:8}" + "".join(f"{counts.get(c, 0):>9}" for c in COLUMNS))
    frac = status.events_processed / status.events_planned if status.events_planned else 1.0
    eta = format_duration(status.eta) if status.eta is not None else "?"
    lines.append(
        f"  events {bar(frac)} {format_count(status.events_processed)}/{format_count(status.events_planned)}"
        f" ({frac:.0%}), {format_count(status.rate)} ev/s over {format_duration(status.elapsed)}"
        + ("" if status.state != "running" else f", ETA {eta}")
    )
    width = max((len(d) for d in status.datasets), default=0)
    for ds, counts in status.datasets.items():
        f = counts["processed"] / counts["planned"] if counts["planned"] else 1.0
        lines.append(f"    {ds:{width}} {bar(f, 16)} {counts['processed']}/{counts['planned']}")
    lines.extend(_format_held(status.held))
    lines.extend(_format_failed(status.failed))
    if status.result:
        lines.append(f"  result: {status.result}")
    elif status.state in ("failed", "removed", "stopped"):
        lines.append(f"  fix the cause, then: condorcof resubmit {status.directory}")
    return "\n".join(lines)


def _format_held(held: list[dict[str, Any]]) -> list[str]:
    lines = [f"  held jobs ({len(held)}):"] if held else []
    for h in held:
        lines.append(f"    {h['node']} (job {h['cluster']}): code {h['code']}: {h['reason']}")
    return lines


def _format_failed(failed: list[dict[str, Any]]) -> list[str]:
    lines = [f"  failed nodes ({len(failed)}):"] if failed else []
    for entry in failed:
        lines.append(f"    {entry['node']}: {entry['details']}")
        record = entry.get("failure")
        if record:
            lines.append(f"      {record['exception']}: {record['message']}")
            if record.get("file"):
                lines.append(
                    f"      chunk {record['index']} of {record['dataset']}: {record['file']} "
                    f"entries [{record['entry_start']}, {record['entry_stop']}) on {record['host']}"
                )
        if entry.get("stderr"):
            lines.extend("      | " + line for line in entry["stderr"].splitlines())
    return lines
