"""Readers of what DAGMan and the jobs leave behind: node status file, node event log,
rescue files, manifests and failure records. Pure parsing; no schedd here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from condorcof.dag import DAG_NAME, OUTPUTS, STATUS_NAME
from condorcof.jobspec import failure_name

NODE_STATES = {0: "waiting", 1: "ready", 2: "prerun", 3: "submitted", 4: "postrun", 5: "done", 6: "failed",
               7: "futile"}  # fmt: skip
DAG_STATES = {
    0: "ok",
    1: "error",
    2: "node failed",
    3: "running",
    4: "removed",
    5: "done",
    6: "error (removed)",
}
NODES_LOG = DAG_NAME + ".nodes.log"


@dataclass
class NodeState:
    """One node as the node status file and event log describe it."""

    name: str
    status: str = "waiting"
    details: str = ""
    retries: int = 0
    held: bool = False
    running: bool = False
    cluster: int | None = None
    hold_reason: str = ""
    hold_code: int | None = None
    memory_mb: int | None = None
    request_memory: int | None = None
    return_value: int | None = None
    host: str = ""


@dataclass
class DagFileState:
    """The node status file: DAG-wide counters and each node's state."""

    dag_status: int | None = None
    finished: bool = False
    timestamp: int | None = None
    nodes: dict[str, NodeState] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)


_ATTRIBUTE = re.compile(r'^[ \t]*(\w+)[ \t]*=[ \t]*("(?:[^"\\]|\\.)*"|[^;\n]*);', re.M)


def _value(text: str) -> Any:
    if text.startswith('"'):
        return re.sub(r"\\(.)", r"\1", text[1:-1])
    try:
        return int(text)
    except ValueError:
        return text


def parse_ads(text: str) -> list[dict[str, Any]]:
    """The ``[ ... ]`` ads of a node status file, attribute by attribute (one per line).

    ``classad2.parseAds`` gives the same for these files but takes 25 s on 100,000 nodes; this
    takes well under one.
    """
    return [
        {key: _value(value.strip()) for key, value in _ATTRIBUTE.findall(block)}
        for block in text.split("\n]")
        if "Type" in block
    ]


def parse_node_status(text: str) -> DagFileState:
    """Parse DAGMan's NODE_STATUS_FILE (old-style ClassAds with comments)."""
    state = DagFileState()
    for ad in parse_ads(text):
        kind = ad.get("Type")
        if kind == "DagStatus":
            state.dag_status = int(ad.get("DagStatus", -1))
            state.timestamp = int(ad.get("Timestamp", 0))
            state.counts = {k: int(v) for k, v in ad.items() if k.startswith(("Nodes", "JobProcs"))}
        elif kind == "NodeStatus":
            name = str(ad["Node"])
            state.nodes[name] = NodeState(
                name=name,
                status=NODE_STATES.get(int(ad.get("NodeStatus", 0)), "unknown"),
                details=str(ad.get("StatusDetails", "")),
                retries=int(ad.get("RetryCount", 0)),
                held=int(ad.get("JobProcsHeld", 0)) > 0,
            )
        elif kind == "StatusEnd":
            state.finished = int(ad.get("NextUpdate", 1)) == 0
    return state


def read_node_status(run_dir: Path) -> DagFileState | None:
    path = run_dir / STATUS_NAME
    try:
        return parse_node_status(path.read_text())
    except FileNotFoundError:
        return None


def apply_event_log(run_dir: Path, nodes: dict[str, NodeState]) -> None:
    """Add what the node event log knows: clusters, running, holds, memory, exit codes."""
    path = run_dir / NODES_LOG
    if not path.exists() or path.stat().st_size == 0:
        return
    import htcondor2

    node_of: dict[int, str] = {}
    for event in htcondor2.JobEventLog(str(path)).events(stop_after=0):
        kind = event.type.name
        if kind == "SUBMIT":
            notes = str(event.get("LogNotes", ""))
            if notes.startswith("DAG Node: "):
                node_of[event.cluster] = notes[len("DAG Node: ") :]
        name = event.get("DAGNodeName") or node_of.get(event.cluster)
        if name is None:
            continue
        node = nodes.setdefault(str(name), NodeState(str(name)))
        _apply_event(node, kind, event)


def _apply_event(node: NodeState, kind: str, event: Any) -> None:
    if kind == "SUBMIT":
        node.cluster, node.running, node.held, node.hold_reason = event.cluster, False, False, ""
    elif kind == "EXECUTE":
        node.running, node.host = True, str(event.get("ExecuteHost", ""))
    elif kind == "JOB_HELD":
        node.held, node.running = True, False
        node.hold_reason = str(event.get("HoldReason", ""))
        node.hold_code = int(event.get("HoldReasonCode", 0))
    elif kind == "JOB_RELEASED":
        node.held = False
    elif kind in ("JOB_EVICTED", "JOB_ABORTED"):
        node.running = False
    elif kind == "JOB_TERMINATED":
        node.running = False
        node.return_value = int(event.get("ReturnValue", -1)) if "ReturnValue" in event else None
        if "MemoryUsage" in event:
            node.memory_mb = int(event["MemoryUsage"])
        if "RequestMemory" in event:
            node.request_memory = int(event["RequestMemory"])


def rescue_files(run_dir: Path) -> list[Path]:
    """Rescue DAGs, oldest first."""
    return sorted(run_dir.glob(DAG_NAME + ".rescue[0-9][0-9][0-9]"))


def rescue_failed_nodes(path: Path) -> list[str]:
    """The failed nodes listed in a rescue DAG's header comment."""
    match = re.search(
        r"^# Nodes that failed: \d+\n#\s+(.*?)<ENDLIST>", path.read_text(), re.M | re.S
    )
    if not match:
        return []
    return [n.strip() for n in match.group(1).replace("\n#", "").split(",") if n.strip()]


def read_failure(run_dir: Path, node: str) -> dict[str, Any] | None:
    try:
        return json.loads((run_dir / OUTPUTS / failure_name(node)).read_text())
    except (OSError, ValueError):
        return None


def read_manifests(run_dir: Path) -> dict[str, dict[str, Any]]:
    """Manifests of finished jobs by job name."""
    out = {}
    for path in (run_dir / OUTPUTS).glob("manifest_*.json"):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        out[manifest["job"]] = manifest
    return out


def stderr_tail(run_dir: Path, node: str, lines: int = 8) -> str:
    """The last lines of the node's newest stderr file."""
    candidates = sorted((run_dir / "logs").glob(f"{node}.*.err"), key=lambda p: p.stat().st_mtime)
    if not candidates:
        return ""
    text = candidates[-1].read_text(errors="replace").rstrip().splitlines()
    return "\n".join(text[-lines:])
