"""The job spec: the small JSON file that tells one worker what to run.

Its size depends on the job's chunks only, never on the size of the whole plan.
Output file names of jobs and merges are defined here too, so every stage agrees on them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from condorcof.errors import PlanError
from condorcof.plan import Chunk, Job, Plan
from condorcof.processor import ProcessorSpec

JOB_FORMAT = "condorcof-job/1"
PARTIAL_FORMAT = "condorcof-partial/1"


@dataclass(frozen=True)
class JobSpec:
    """One job: its chunks, the processor, and per-dataset metadata."""

    job: str
    processor: ProcessorSpec
    chunks: tuple[Chunk, ...]
    file_entries: dict[str, int]
    metadata: dict[str, dict[str, Any]]
    schema: str = "nanoaod"
    transferred: tuple[str, ...] = ()
    skip_files: tuple[str, ...] = ()
    redirectors: tuple[str, ...] = ()

    def local_path(self, path: str) -> str:
        """Where the job finds ``path``: in its working directory when it travelled with the job."""
        return Path(path).name if path in self.transferred else path

    def to_json(self) -> dict[str, Any]:
        return {
            "format": JOB_FORMAT,
            "job": self.job,
            "processor": self.processor.to_json(),
            "chunks": [c.to_json() for c in self.chunks],
            "file_entries": self.file_entries,
            "metadata": self.metadata,
            "schema": self.schema,
            "transferred": list(self.transferred),
            "skip_files": list(self.skip_files),
            "redirectors": list(self.redirectors),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> JobSpec:
        if data.get("format") != JOB_FORMAT:
            raise PlanError(f"not a condorcof job spec (format {data.get('format')!r})")
        return cls(
            job=data["job"],
            processor=ProcessorSpec.from_json(data["processor"]),
            chunks=tuple(Chunk(**c) for c in data["chunks"]),
            file_entries=dict(data["file_entries"]),
            metadata=data["metadata"],
            schema=data.get("schema", "nanoaod"),
            transferred=tuple(data.get("transferred", ())),
            skip_files=tuple(data.get("skip_files", ())),
            redirectors=tuple(data.get("redirectors", ())),
        )


def file_entry_counts(plan: Plan) -> dict[str, int]:
    """Entries of every planned file, keyed ``path\0tree`` (compute once per plan)."""
    return {f.path + "\0" + f.treename: f.num_entries for ds in plan.datasets for f in ds.files}


def job_spec(
    plan: Plan,
    job: Job,
    processor: ProcessorSpec,
    schema: str = "nanoaod",
    entries: dict[str, int] | None = None,
) -> JobSpec:
    """The spec of one job of the plan (pass ``entries`` when building many)."""
    chunks = plan.chunks_of(job)
    entries = entries if entries is not None else file_entry_counts(plan)
    keys = {c.path + "\0" + c.treename for c in chunks}
    return JobSpec(
        job=job.name,
        processor=processor,
        chunks=chunks,
        file_entries={k: entries[k] for k in sorted(keys)},
        metadata={ds: dict(plan.metadata_of(ds)) for ds in sorted({c.dataset for c in chunks})},
        schema=schema,
    )


def partial_name(node: str) -> str:
    """The output file of a job node or merge node (``final`` writes :func:`result_name`)."""
    return f"partial_{node}.pkl"


def manifest_name(node: str) -> str:
    return f"manifest_{node}.json"


def failure_name(node: str) -> str:
    return f"failure_{node}.json"


SHARD_FORMAT = "condorcof-jobs/1"
SHARD_SIZE = 100  # job specs per file: 100,000 jobs make 1,000 small files, not 100,000


def shard_name(job_position: int) -> str:
    """The file holding the spec of the job at this position in the plan.

    >>> shard_name(0), shard_name(99), shard_name(100)
    ('specs_00000.json', 'specs_00000.json', 'specs_00001.json')
    """
    return f"specs_{job_position // SHARD_SIZE:05d}.json"


def read_job_spec(data: dict[str, Any], job: str | None) -> JobSpec:
    """A job's spec from a spec file: a shard of several jobs (pick ``job``) or a single spec."""
    if data.get("format") == SHARD_FORMAT:
        if job not in data["jobs"]:
            raise PlanError(
                f"the spec file has no job {job!r} (it has {', '.join(sorted(data['jobs'])[:5])}...)"
            )
        return JobSpec.from_json(data["jobs"][job])
    return JobSpec.from_json(data)


RESULT_NAME = "result.pkl"
REPORT_NAME = "result.json"
