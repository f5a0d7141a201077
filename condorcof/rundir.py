"""The run directory: everything about one submission, written by one writer.

Layout: ``run.json`` (what and where), ``plan.json``, ``processor.json``, ``bundle.zip``,
``jobs/specs_<k>.json`` (job specs, 100 a file), ``inputs/`` (user files), ``workflow.dag``, ``chunk.sub``, ``merge.sub``,
``dagman.config``, and the folders ``outputs/`` (partials, failure records, the result) and
``logs/``. Created with owner-only permissions.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from condorcof.bundle import BUNDLE_NAME, USER_DIR, write_bundle
from condorcof.dag import (
    CHUNK_SUB,
    CONFIG_NAME,
    DAG_NAME,
    MERGE_SUB,
    OUTPUTS,
    PLAN_NAME,
    PROCESSOR_NAME,
    DagSpec,
    build_dag,
    job_input_files,
    render_config,
    render_dag,
    render_submit_files,
)
from condorcof.errors import RunNotFoundError, SubmitError
from condorcof.fileset import is_url
from condorcof.jobspec import RESULT_NAME, SHARD_FORMAT, file_entry_counts, job_spec, shard_name
from condorcof.plan import Plan, load_plan, save_plan
from condorcof.processor import ProcessorSpec
from condorcof.safepickle import write_json_atomic, write_text_atomic
from condorcof.sites import SiteProfile

RUN_FILE = "run.json"
SUMMARY_NAME = "summary.json"
RUNS_DIR = "condorcof-runs"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,80}$")


@dataclass(frozen=True)
class RunInfo:
    """What ``run.json`` records about a run."""

    name: str
    directory: str
    created: float
    processor: dict[str, Any]
    site: str
    image: str
    schema: str = "nanoaod"
    cluster: int | None = None
    schedd: str | None = None
    submitted: float | None = None
    spool: bool = False
    pool: str | None = None

    @property
    def path(self) -> Path:
        return Path(self.directory)

    @property
    def result(self) -> Path:
        return self.path / OUTPUTS / RESULT_NAME


def default_run_name(processor: ProcessorSpec) -> str:
    """``<class>-<date>-<time>``, e.g. ``dimuonvbf-20261125-101500``."""
    return f"{processor.attr.lower()}-{time.strftime('%Y%m%d-%H%M%S')}"


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise SubmitError(f"run name {name!r}: use letters, digits, '.', '_' and '-' (at most 81)")
    return name


def write_run(
    run_dir: Path,
    name: str,
    plan: Plan,
    processor: ProcessorSpec,
    profile: SiteProfile,
    schema: str = "nanoaod",
    input_files: tuple[Path, ...] = (),
    spool: bool = False,
) -> RunInfo:
    """Create the run directory with every file DAGMan needs; returns its :class:`RunInfo`."""
    run_dir = run_dir.resolve()
    if run_dir.exists() and any(run_dir.iterdir()):
        raise SubmitError(
            f"run directory {run_dir} already exists and is not empty; pick another --name"
        )
    for folder in (
        run_dir,
        run_dir / "jobs",
        run_dir / "logs",
        run_dir / OUTPUTS,
        run_dir / "inputs",
    ):
        folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(run_dir, 0o700)
    shipped = processor.relocated(USER_DIR if processor.search_path else None)
    write_bundle(
        run_dir / BUNDLE_NAME, Path(processor.search_path) if processor.search_path else None
    )
    save_plan(plan, run_dir / PLAN_NAME)
    write_json_atomic(run_dir / SUMMARY_NAME, plan_summary(plan), compact=True)
    write_json_atomic(run_dir / PROCESSOR_NAME, shipped.to_json())
    _write_job_specs(run_dir, plan, shipped, schema)
    extra = _copy_inputs(run_dir, input_files)
    for filename, text in render_submit_files(profile, name, extra).items():
        write_text_atomic(run_dir / filename, text)
    write_text_atomic(run_dir / CONFIG_NAME, render_config(profile, name))
    dag = build_dag(plan, profile, name)
    text = render_dag(spooled_dag(dag) if spool else dag)
    if (
        spool
    ):  # DAGMan in the spool cannot find the CONFIG file: its settings travel in the environment
        text = text.replace(f"CONFIG {CONFIG_NAME}\n", "")
    write_text_atomic(run_dir / DAG_NAME, text)
    info = RunInfo(
        name,
        str(run_dir),
        time.time(),
        processor.to_json(),
        profile.name,
        profile.image,
        schema,
        spool=spool,
    )
    save_run_info(info)
    return info


def plan_summary(plan: Plan) -> dict[str, Any]:
    """What ``status`` needs of the plan, small enough to read in a blink at 100,000 jobs:
    planned events per dataset, events per dataset of each job, the merge nodes."""
    jobs: dict[str, dict[str, int]] = {}
    for job in plan.jobs:
        per_dataset = jobs.setdefault(job.name, {})
        for chunk in plan.chunks_of(job):
            per_dataset[chunk.dataset] = per_dataset.get(chunk.dataset, 0) + chunk.num_entries
    return {
        "datasets": plan.events_per_dataset(),
        "jobs": jobs,
        "merges": [m.name for m in plan.merges],
    }


def read_summary(run_dir: Path) -> dict[str, Any]:
    """The run's summary (made from ``plan.json`` for run directories that predate it)."""
    try:
        return json.loads((run_dir / SUMMARY_NAME).read_text())
    except FileNotFoundError:
        return plan_summary(load_plan(run_dir / PLAN_NAME))


def spooled_dag(dag: DagSpec) -> DagSpec:
    """The DAG as it runs from the schedd's spool: input files travel with the DAGMan job and
    lie in the spool folder by name."""
    nodes = []
    for node in dag.nodes:
        if node.vars.get("inputs") and node.submit == CHUNK_SUB:
            names = ", ".join(Path(p).name for p in node.vars["inputs"].split(", "))
            node = replace(node, vars={**node.vars, "inputs": names})
        nodes.append(node)
    return replace(dag, nodes=tuple(nodes))


def spool_inputs(info: RunInfo, plan: Plan) -> list[str]:
    """What the DAGMan job must carry into the spool: the DAG, its files and the local data."""
    run_dir = info.path
    names = [DAG_NAME, CHUNK_SUB, MERGE_SUB, CONFIG_NAME, BUNDLE_NAME, PLAN_NAME, PROCESSOR_NAME,
             "jobs", "inputs", "logs", OUTPUTS]  # fmt: skip
    names += sorted(p.name for p in run_dir.glob(DAG_NAME + ".rescue[0-9][0-9][0-9]"))
    data = sorted({c.path for c in plan.chunks if not is_url(c.path)})
    by_name: dict[str, str] = {}
    for path in data:
        other = by_name.setdefault(Path(path).name, path)
        if other != path:
            raise SubmitError(
                f"spooled runs carry input files by name, and {other} and {path} share one"
            )
    return names + data


def spool_outputs(info: RunInfo, failed: bool = False) -> list[str]:
    """What a spooled DAGMan job brings back: HTCondor returns only top-level files unless told,
    so the output folders and DAGMan's files are named; after a failure, also the rescue DAG
    this run wrote (naming a file that does not exist would make the retrieval fail)."""
    names = [OUTPUTS, "logs"] + [
        DAG_NAME + s for s in (".status", ".nodes.log", ".jobstate.log", ".metrics")
    ]
    if failed:
        rescue = len(list(info.path.glob(DAG_NAME + ".rescue[0-9][0-9][0-9]"))) + 1
        names.append(f"{DAG_NAME}.rescue{rescue:03d}")
    return names


def _write_job_specs(run_dir: Path, plan: Plan, processor: ProcessorSpec, schema: str) -> None:
    entries = file_entry_counts(plan)
    shards: dict[str, dict[str, Any]] = {}
    for position, job in enumerate(plan.jobs):
        data = job_spec(plan, job, processor, schema, entries).to_json()
        data["transferred"] = job_input_files(plan, job)
        shards.setdefault(shard_name(position), {})[job.name] = data
    for name, jobs in shards.items():
        with open(run_dir / "jobs" / name, "w") as handle:
            handle.write(json.dumps({"format": SHARD_FORMAT, "jobs": jobs}, separators=(",", ":")))


def _copy_inputs(run_dir: Path, input_files: tuple[Path, ...]) -> list[str]:
    names = []
    for source in input_files:
        if not source.is_file():
            raise SubmitError(f"--input-files: no such file {source}")
        if source.name in names or source.name in (BUNDLE_NAME,):
            raise SubmitError(f"--input-files: two inputs are called {source.name}")
        shutil.copy2(source, run_dir / "inputs" / source.name)
        names.append(source.name)
    return [f"inputs/{n}" for n in names]


def save_run_info(info: RunInfo) -> None:
    write_json_atomic(info.path / RUN_FILE, asdict(info))


def load_run_info(run_dir: Path) -> RunInfo:
    try:
        data = json.loads((run_dir / RUN_FILE).read_text())
    except (OSError, ValueError) as err:
        raise RunNotFoundError(f"{run_dir} is not a condorcof run directory ({err})") from err
    return RunInfo(**data)


def with_submission(info: RunInfo, cluster: int, schedd: str | None, pool: str | None) -> RunInfo:
    """The run info once DAGMan has a cluster id (and where its schedd is)."""
    return replace(info, cluster=cluster, schedd=schedd, pool=pool, submitted=time.time())


def find_run(run: str, workdir: Path | None = None) -> RunInfo:
    """A run by directory, or by name under ``workdir`` (default ``./condorcof-runs``)."""
    candidates = [Path(run), (workdir or Path(RUNS_DIR)) / run]
    for candidate in candidates:
        if (candidate / RUN_FILE).is_file():
            return load_run_info(candidate.resolve())
    raise RunNotFoundError(f"no run {run!r} (looked in {', '.join(str(c) for c in candidates)})")
