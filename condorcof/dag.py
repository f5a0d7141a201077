"""The DAG as plain data, built from the plan by pure functions, then rendered to text.

Node names are the plan's job and merge names, so a node maps straight back to its chunks.
The final merge is an ordinary node (not a DAGMan FINAL node, whose success would hide
failed nodes); chunk nodes retry unless the worker reports a deterministic failure.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from condorcof.errors import SubmitError
from condorcof.fileset import is_url
from condorcof.jobspec import RESULT_NAME, partial_name, shard_name
from condorcof.plan import FINAL_NODE, Job, Plan
from condorcof.sites import SiteProfile
from condorcof.templates import load_template, quote_value, render
from condorcof.worker import EXIT_DETERMINISTIC

DAG_NAME = "workflow.dag"
STATUS_NAME = "workflow.dag.status"
JOBSTATE_NAME = "workflow.dag.jobstate.log"
CHUNK_SUB = "chunk.sub"
MERGE_SUB = "merge.sub"
CONFIG_NAME = "dagman.config"
PLAN_NAME = "plan.json"
PROCESSOR_NAME = "processor.json"
OUTPUTS = "outputs"


@dataclass(frozen=True)
class DagNode:
    """One DAG node: its submit file, VARS, parents, retries and category."""

    name: str
    submit: str
    vars: dict[str, str] = field(default_factory=dict)
    parents: tuple[str, ...] = ()
    retries: int = 0
    category: str = ""


@dataclass(frozen=True)
class DagSpec:
    """The whole workflow: nodes in a topological order plus DAG-wide settings."""

    nodes: tuple[DagNode, ...]
    status_interval: int = 5
    max_merges: int = 0
    comment: str = ""


def job_input_files(plan: Plan, job: Job) -> list[str]:
    """Local files a job reads: they travel with the job (URLs are read remotely)."""
    paths = list(dict.fromkeys(c.path for c in plan.chunks_of(job) if not is_url(c.path)))
    names = [os.path.basename(p) for p in paths]
    if len(set(names)) != len(names):
        clash = next(n for n in names if names.count(n) > 1)
        raise SubmitError(
            f"job {job.name} reads two files named {clash!r} from different folders; files travel "
            "to the job by name, so give them distinct names or put them in different datasets"
        )
    return paths


def build_dag(plan: Plan, profile: SiteProfile, run_name: str) -> DagSpec:
    """The DAG for ``plan``: one node per job, one per merge, the final merge last."""
    nodes = [
        DagNode(
            job.name,
            CHUNK_SUB,
            {
                "attempt": "$(RETRY)",
                "specs": shard_name(position),
                "inputs": ", ".join(job_input_files(plan, job)),
            },
            retries=profile.retries,
            category="chunks",
        )
        for position, job in enumerate(plan.jobs)
    ]
    for merge in plan.merges:
        nodes.append(_merge_node(merge.name, merge.inputs, profile.retries))
    comment = (
        f"condorcof run {run_name}: {len(plan.jobs)} chunk jobs over {len(plan.chunks)} chunks, "
        f"{len(plan.merges)} merge nodes (fan-in {plan.options.merge_fanin})"
    )
    return DagSpec(tuple(nodes), comment=comment)


def _merge_node(name: str, inputs: tuple[str, ...], retries: int) -> DagNode:
    files = [partial_name(i) for i in inputs]
    final = name == FINAL_NODE
    transferred = [f"{OUTPUTS}/{f}" for f in files]
    variables = {
        "attempt": "$(RETRY)",
        "inputs": " ".join(files),
        "input_files": ", ".join(
            [PLAN_NAME, PROCESSOR_NAME, *transferred] if final else transferred
        ),
        "merged": RESULT_NAME if final else partial_name(name),
        "merge_args": f"--final --plan {PLAN_NAME} --processor {PROCESSOR_NAME}" if final else "",
    }
    return DagNode(name, MERGE_SUB, variables, parents=inputs, retries=retries, category="merges")


def render_dag(spec: DagSpec) -> str:
    """The text of ``workflow.dag``."""
    lines = [f"# {spec.comment}", f"CONFIG {CONFIG_NAME}", f"NODE_STATUS_FILE {STATUS_NAME} {spec.status_interval}",
             f"JOBSTATE_LOG {JOBSTATE_NAME}", ""]  # fmt: skip
    for node in spec.nodes:
        lines.append(f"JOB {node.name} {node.submit}")
        if node.vars:
            values = " ".join(f"{k}={quote_value(v)}" for k, v in node.vars.items())
            lines.append(f"VARS {node.name} {values}")
        if node.retries:
            lines.append(f"RETRY {node.name} {node.retries} UNLESS-EXIT {EXIT_DETERMINISTIC}")
        if node.category:
            lines.append(f"CATEGORY {node.name} {node.category}")
        if node.parents:
            lines.append(f"PARENT {' '.join(node.parents)} CHILD {node.name}")
    if spec.max_merges:
        lines.append(f"MAXJOBS merges {spec.max_merges}")
    return "\n".join(lines) + "\n"


def submit_values(profile: SiteProfile, run_name: str, input_files: list[str]) -> dict[str, str]:
    """Values for the chunk and merge submit templates."""
    return {
        "run_name": run_name,
        "universe": profile.universe,
        "container": _container_line(profile),
        "python": profile.python,
        "request_cpus": str(profile.request_cpus),
        "request_memory": memory_expression(profile.request_memory, profile.max_memory),
        "max_memory": str(profile.max_memory),
        "merge_memory": str(profile.merge_memory),
        "request_disk": profile.request_disk,
        "holds": (
            "# a failed transfer (hold codes 12, 13) or memory still too small at the cap removes\n"
            "# the job, so the node fails and RETRY (or condorcof resubmit --memory) takes over\n"
            "periodic_remove         = (JobStatus == 5) && (HoldReasonCode =?= 12 || HoldReasonCode =?= 13"
            f" || (HoldReasonCode =?= 34 && RequestMemory >= {profile.max_memory}))"
        ),
        "input_files": "".join(f", {f}" for f in input_files),
        "environment": _environment(profile),
        "extra": "\n".join(f"{k:<23} = {v}" for k, v in _extra_lines(profile)),
    }


def _extra_lines(profile: SiteProfile) -> list[tuple[str, str]]:
    """Submit lines from profile settings (credentials), then the profile's ``[submit]`` lines."""
    lines = [("use_x509userproxy", "true")] if profile.x509 else []
    return lines + sorted(profile.submit.items())


def _environment(profile: SiteProfile) -> str:
    """Extra variables for chunk jobs, appended inside ``environment = "..."``."""
    if not profile.xrootd_redirectors:
        return ""
    return " CONDORCOF_XROOTD_REDIRECTORS=" + ",".join(profile.xrootd_redirectors)


def memory_expression(base: int, cap: int) -> str:
    """``request_memory``: ``$(mem)`` (default ``base``) doubled per memory hold, up to ``cap``.

    >>> memory_expression(1024, 4096)
    'ifThenElse(isUndefined(NumHoldsByReason.JobOutOfResources), $(mem:1024), min({$(mem:1024) * pow(2, NumHoldsByReason.JobOutOfResources), 4096}))'
    """
    mem = f"$(mem:{base})"
    holds = "NumHoldsByReason.JobOutOfResources"
    return f"ifThenElse(isUndefined({holds}), {mem}, min({{{mem} * pow(2, {holds}), {cap}}}))"


def _container_line(profile: SiteProfile) -> str:
    if profile.universe == "docker":
        return f"docker_image            = {profile.image}"
    if profile.universe == "container":
        return f"container_image         = {profile.image}"
    return f'+SingularityImage       = "{profile.image}"' if profile.image else ""


def render_submit_files(
    profile: SiteProfile, run_name: str, input_files: list[str]
) -> dict[str, str]:
    """``chunk.sub`` and ``merge.sub`` text."""
    values = submit_values(profile, run_name, input_files)
    merge_values = {
        k: v
        for k, v in values.items()
        if k not in ("request_cpus", "request_memory", "input_files", "max_memory", "environment")
    }
    merge_values["holds"] = (
        "# a failed transfer (hold codes 12, 13) or the memory limit (34) removes the job, so the\n"
        "# node fails and RETRY (or condorcof resubmit) takes over\n"
        "periodic_remove         = (JobStatus == 5) && (HoldReasonCode =?= 12 || HoldReasonCode =?= 13"
        " || HoldReasonCode =?= 34)"
    )
    chunk_values = {k: v for k, v in values.items() if k != "merge_memory"}
    return {
        CHUNK_SUB: render(load_template(CHUNK_SUB), chunk_values, CHUNK_SUB),
        MERGE_SUB: render(load_template(MERGE_SUB), merge_values, MERGE_SUB),
    }


def render_config(profile: SiteProfile, run_name: str) -> str:
    """``dagman.config`` text."""
    values = {
        "run_name": run_name,
        "scan_interval": profile.scan_interval,
        "max_jobs": profile.max_jobs,
    }
    return render(load_template(CONFIG_NAME), values, CONFIG_NAME)
