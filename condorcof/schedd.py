"""Talking to the schedd through the official ``htcondor2`` bindings (the only module that does).

Submission goes through ``Submit.from_dag`` without ``force`` (force throws the rescue DAG
away) and with ``maxidle`` as an option (a CONFIG value would be overridden).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from condorcof.errors import ScheddError

DAGMAN_ATTRS = [
    "ClusterId",
    "JobStatus",
    "DAG_Status",
    "DAG_NodesTotal",
    "DAG_NodesDone",
    "DAG_NodesFailed",
]


def _bindings() -> Any:
    try:
        import htcondor2
    except ImportError as err:
        raise ScheddError("the HTCondor Python bindings are missing: pip install htcondor") from err
    return htcondor2


def get_schedd(name: str | None = None, pool: str | None = None) -> Any:
    """The local schedd, or a named one found through the collector of ``pool``."""
    htcondor2 = _bindings()
    try:
        if not name:
            return htcondor2.Schedd()
        ad = htcondor2.Collector(pool).locate(htcondor2.DaemonType.Schedd, name)
        return htcondor2.Schedd(ad)
    except Exception as err:
        raise ScheddError(f"cannot reach the schedd {name or '(local)'}: {err}") from err


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def submit_dag(run_dir: Path, dag_name: str, batch_name: str, max_idle: int, schedd: Any) -> int:
    """Submit (or resubmit, using DAGMan's rescue DAG) the DAG; returns DAGMan's cluster id."""
    htcondor2 = _bindings()
    with _cwd(run_dir):
        try:
            sub = htcondor2.Submit.from_dag(
                dag_name, {"maxidle": max_idle, "batch-name": batch_name}
            )
            return int(schedd.submit(sub).cluster())
        except Exception as err:
            raise ScheddError(f"submitting {run_dir / dag_name} failed: {err}") from err


def submit_dag_spooled(
    run_dir: Path,
    dag_name: str,
    batch_name: str,
    max_idle: int,
    schedd: Any,
    inputs: list[str],
    outputs: list[str],
) -> int:
    """Submit the DAG with its inputs spooled into the schedd: nothing on this machine needs to
    stay reachable; ``retrieve_outputs`` brings the results back."""
    htcondor2 = _bindings()
    with _cwd(run_dir):
        try:
            sub = htcondor2.Submit.from_dag(
                dag_name, {"maxidle": max_idle, "batch-name": batch_name}
            )
            sub["transfer_input_files"] = ", ".join(inputs)
            sub["environment"] = spooled_environment(str(sub.get("environment", "")), run_dir)
            sub["transfer_output_files"] = ", ".join(outputs)
            result = schedd.submit(sub, spool=True)
            schedd.spool(result)
            return int(result.cluster())
        except Exception as err:
            raise ScheddError(f"spooled submission of {run_dir / dag_name} failed: {err}") from err


def spooled_environment(environment: str, run_dir: Path) -> str:
    """DAGMan's environment for a spooled run: the per-DAG config file cannot be found from the
    spool (DAGMan reads it before entering its folder), so its settings go in as ``_CONDOR_``
    variables instead.

    >>> spooled_environment('"_CONDOR_DAGMAN_CONFIG_FILE=/r/dagman.config _CONDOR_DAGMAN_LOG=x"', Path("/nonexistent"))
    '"_CONDOR_DAGMAN_LOG=x"'
    """
    words = [
        w for w in environment.strip('"').split() if not w.startswith("_CONDOR_DAGMAN_CONFIG_FILE=")
    ]
    config = run_dir / "dagman.config"
    if config.exists():
        for line in config.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep and not key.strip().startswith("#"):
                words.append(f"_CONDOR_{key.strip()}={value.strip()}")
    return '"' + " ".join(words) + '"'


def retrieve_outputs(schedd: Any, cluster: int, outputs: list[str]) -> None:
    """Bring a finished spooled job's ``outputs`` back to its submit folder, then clear it from the queue."""
    htcondor2 = _bindings()
    try:
        schedd.edit(f"ClusterId == {int(cluster)}", "TransferOutput", '"' + ",".join(outputs) + '"')
        schedd.retrieve(f"ClusterId == {int(cluster)}")
        schedd.act(
            htcondor2.JobAction.Remove, f"ClusterId == {int(cluster)}", reason="condorcof fetch"
        )
    except Exception as err:
        raise ScheddError(f"cannot retrieve the outputs of job {cluster}: {err}") from err


def query_job(schedd: Any, cluster: int, attrs: list[str] | None = None) -> dict[str, Any] | None:
    """The DAGMan job's ad while it is in the queue, else None."""
    try:
        ads = schedd.query(f"ClusterId == {int(cluster)}", attrs or DAGMAN_ATTRS)
    except Exception as err:
        raise ScheddError(f"cannot query the schedd: {err}") from err
    return dict(ads[0]) if ads else None


def query_node_jobs(schedd: Any, cluster: int, attrs: list[str]) -> list[dict[str, Any]]:
    """Node jobs of a DAG in the queue."""
    try:
        return [dict(ad) for ad in schedd.query(f"DAGManJobId == {int(cluster)}", attrs)]
    except Exception as err:
        raise ScheddError(f"cannot query the schedd: {err}") from err


def remove_dag(schedd: Any, cluster: int, reason: str) -> None:
    """Remove the DAGMan job (DAGMan then removes its node jobs and writes a rescue DAG)."""
    htcondor2 = _bindings()
    try:
        schedd.act(htcondor2.JobAction.Remove, f"ClusterId == {int(cluster)}", reason=reason)
    except Exception as err:
        raise ScheddError(f"cannot remove DAGMan job {cluster}: {err}") from err


def release_held(schedd: Any, cluster: int, memory: int | None) -> list[str]:
    """Release the DAG's held node jobs, first raising RequestMemory when asked; returns job ids."""
    htcondor2 = _bindings()
    held = [
        f"{ad['ClusterId']}.{ad['ProcId']}"
        for ad in query_node_jobs(schedd, cluster, ["ClusterId", "ProcId", "JobStatus"])
        if ad.get("JobStatus") == 5
    ]
    if not held:
        return []
    try:
        if memory is not None:
            schedd.edit(held, "RequestMemory", str(int(memory)))
        schedd.act(htcondor2.JobAction.Release, held)
    except Exception as err:
        raise ScheddError(f"cannot release jobs {held}: {err}") from err
    return held
