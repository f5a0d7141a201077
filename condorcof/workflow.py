"""Submit and resubmit a run directory's DAG, and record the DAGMan job."""

from __future__ import annotations

import json
import re
import shutil
from dataclasses import replace
from pathlib import Path

from condorcof.bundle import BUNDLE_NAME, write_bundle
from condorcof.dag import DAG_NAME, OUTPUTS, PLAN_NAME
from condorcof.errors import SubmitError
from condorcof.jobspec import failure_name, read_job_spec, shard_name
from condorcof.monitor import NODES_LOG, read_failure, rescue_failed_nodes, rescue_files
from condorcof.plan import load_plan
from condorcof.rundir import (
    RunInfo,
    read_summary,
    save_run_info,
    spool_inputs,
    spool_outputs,
    with_submission,
)
from condorcof.safepickle import write_json_atomic, write_text_atomic
from condorcof.schedd import get_schedd, query_job, retrieve_outputs, submit_dag, submit_dag_spooled
from condorcof.templates import quote_value


def ensure_not_queued(info: RunInfo, schedd: object) -> None:
    """Refuse a second DAGMan over the same outputs while the first is still queued."""
    job = (
        query_job(schedd, info.cluster, ["ClusterId", "JobStatus"])
        if info.cluster is not None
        else None
    )
    if job is not None and info.spool and job.get("JobStatus") == 4:
        raise SubmitError(
            f"run {info.name} has finished in the spool: 'condorcof fetch {info.directory}' first"
        )
    if job is not None:
        raise SubmitError(
            f"run {info.name}: its DAG (DAGMan job {info.cluster}) is still in the queue; "
            f"follow it with 'condorcof status {info.directory}' or stop it with 'condorcof remove'"
        )


def submit_run(
    info: RunInfo, max_idle: int, schedd_name: str | None = None, pool: str | None = None
) -> RunInfo:
    """Submit the run's DAG (DAGMan applies a rescue DAG if one exists); returns the updated info."""
    schedd = get_schedd(schedd_name, pool)
    ensure_not_queued(info, schedd)
    cluster = _submit(info, max_idle, schedd)
    info = with_submission(info, cluster, schedd_name, pool)
    save_run_info(info)
    return info


def _submit(info: RunInfo, max_idle: int, schedd: object) -> int:
    if info.spool:
        inputs = spool_inputs(info, load_plan(info.path / PLAN_NAME))
        return submit_dag_spooled(
            info.path, DAG_NAME, info.name, max_idle, schedd, inputs, spool_outputs(info)
        )
    return submit_dag(info.path, DAG_NAME, info.name, max_idle, schedd)


def fetch_run(info: RunInfo) -> None:
    """Bring a spooled run's outputs, logs and DAGMan files back into its run directory."""
    if not info.spool or info.cluster is None:
        raise SubmitError(
            f"run {info.name} was not submitted with spooling; its outputs are already local"
        )
    schedd = get_schedd(info.schedd, info.pool)
    job = query_job(schedd, info.cluster, ["JobStatus", "ExitCode"])
    if job is None:
        raise SubmitError(
            f"run {info.name}: DAGMan job {info.cluster} is no longer in the queue (fetched already?)"
        )
    if job.get("JobStatus") != 4:
        raise SubmitError(
            f"run {info.name}: DAGMan job {info.cluster} has not finished yet; fetch when it has"
        )
    retrieve_outputs(schedd, info.cluster, spool_outputs(info, failed=job.get("ExitCode") != 0))


def set_node_var(dag_text: str, node: str, key: str, value: str) -> str:
    """Set ``key=value`` in the VARS line of ``node`` (adding the line if needed).

    >>> set_node_var('JOB a x.sub\\nVARS a attempt="$(RETRY)" mem="1"\\n', "a", "mem", "2")
    'JOB a x.sub\\nVARS a attempt="$(RETRY)" mem="2"\\n'
    """
    lines = dag_text.splitlines(keepends=True)
    pair = f"{key}={quote_value(value)}"
    prefix = f"VARS {node} "
    for i, line in enumerate(lines):
        if line.startswith(prefix):
            stripped = re.sub(rf'\s{re.escape(key)}="(?:[^"\\]|\\.)*"', "", line.rstrip("\n"))
            lines[i] = f"{stripped} {pair}\n"
            return "".join(lines)
    for i, line in enumerate(lines):
        if line.split()[:2] == ["JOB", node]:
            lines.insert(i + 1, f"VARS {node} {pair}\n")
            return "".join(lines)
    raise SubmitError(f"the DAG has no node {node!r}")


def set_retries(dag_text: str, nodes: set[str], retries: int) -> str:
    """Rewrite the RETRY count of ``nodes`` (keeping UNLESS-EXIT)."""
    out = []
    for line in dag_text.splitlines(keepends=True):
        words = line.split()
        if len(words) >= 3 and words[0] == "RETRY" and words[1] in nodes:
            words[2] = str(retries)
            line = " ".join(words) + "\n"
        out.append(line)
    return "".join(out)


def resubmit_run(
    info: RunInfo,
    memory: int | None = None,
    retries: int | None = None,
    schedd_name: str | None = None,
    max_idle: int = 1000,
    refresh_code: bool = True,
    skip_files: bool = False,
) -> tuple[RunInfo, list[str], list[str]]:
    """Resubmit through DAGMan's newest rescue DAG: only failed and unrun nodes run again.

    With ``refresh_code`` the bundle takes the analysis folder as it is now (the usual repair:
    fix the processor, resubmit); nodes that already succeeded keep their outputs.
    """
    schedd = get_schedd(schedd_name or info.schedd, info.pool)
    ensure_not_queued(info, schedd)
    rescues = rescue_files(info.path)
    if not rescues:
        if info.result.exists():
            raise SubmitError(f"run {info.name} is complete ({info.result}); nothing to resubmit")
        raise SubmitError(
            f"run {info.name} has no rescue DAG: it was never run to an end; use 'condorcof submit'"
        )
    failed = rescue_failed_nodes(rescues[-1])
    skipped = skip_bad_files(info.path, failed) if skip_files else []
    if refresh_code:
        refresh_bundle(info)
    _apply_overrides(info.path, set(failed), memory, retries)
    _archive_attempt(info.path, failed, len(rescues))
    cluster = _submit(info, max_idle, schedd)
    info = with_submission(info, cluster, schedd_name or info.schedd, info.pool)
    save_run_info(info)
    return info, failed, skipped


def _apply_overrides(
    run_dir: Path, failed: set[str], memory: int | None, retries: int | None
) -> None:
    dag_path = run_dir / DAG_NAME
    text = dag_path.read_text()
    if memory is not None:
        for node in sorted(failed):
            if node.startswith("job_"):
                text = set_node_var(text, node, "mem", str(memory))
    if retries is not None:
        text = set_retries(text, failed, retries)
        for rescue in rescue_files(run_dir):
            write_text_atomic(rescue, set_retries(rescue.read_text(), failed, retries))
    write_text_atomic(dag_path, text)


def _archive_attempt(run_dir: Path, failed: list[str], attempt: int) -> None:
    """Keep the node log (DAGMan truncates it on every run) and move stale failure records."""
    archive = run_dir / "logs" / f"attempt{attempt:03d}"
    archive.mkdir(exist_ok=True)
    nodes_log = run_dir / NODES_LOG
    if nodes_log.exists():
        shutil.copy2(nodes_log, archive / NODES_LOG)
    for node in failed:
        record = run_dir / OUTPUTS / failure_name(node)
        if record.exists():
            record.rename(archive / record.name)


def refresh_bundle(info: RunInfo) -> Path | None:
    """Rebuild ``bundle.zip`` from the processor's folder; returns that folder (None if none)."""
    folder = info.processor.get("search_path")
    if not folder:
        return None
    if not Path(folder).is_dir():
        raise SubmitError(
            f"the processor's folder {folder} is gone; pass --keep-code to reuse the old bundle"
        )
    write_bundle(info.path / BUNDLE_NAME, Path(folder))
    return Path(folder)


def skip_bad_files(run_dir: Path, failed: list[str]) -> list[str]:
    """Tell the failed jobs whose input file was at fault to leave that file out; returns the
    files. The final result lists them; chunks of other files run as usual."""
    skipped: list[str] = []
    positions = {name: k for k, name in enumerate(read_summary(run_dir)["jobs"])}
    for node in failed:
        record = read_failure(run_dir, node)
        if not record or record.get("cause") != "input" or not record.get("file"):
            continue
        shard_path = run_dir / "jobs" / shard_name(positions[node])
        shard = json.loads(shard_path.read_text())
        spec = read_job_spec(shard, node)
        spec = replace(spec, skip_files=tuple(sorted({*spec.skip_files, record["file"]})))
        shard["jobs"][node] = spec.to_json()
        write_json_atomic(shard_path, shard, compact=True)
        skipped.append(record["file"])
    return skipped
