"""Submit a run directory's DAG to a schedd and record the DAGMan job."""

from __future__ import annotations

from condorcof.dag import DAG_NAME
from condorcof.errors import SubmitError
from condorcof.rundir import RunInfo, save_run_info, with_submission
from condorcof.schedd import get_schedd, query_job, submit_dag


def ensure_not_queued(info: RunInfo, schedd: object) -> None:
    """Refuse a second DAGMan over the same outputs while the first is still queued."""
    if info.cluster is not None and query_job(schedd, info.cluster, ["ClusterId"]) is not None:
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
    cluster = submit_dag(info.path, DAG_NAME, info.name, max_idle, schedd)
    info = with_submission(info, cluster, schedd_name)
    save_run_info(info)
    return info
