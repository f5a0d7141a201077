"""From a fileset file to a saved-ready plan: read, preprocess (cached), split, pack."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from condorcof.fileset import DEFAULT_TREENAME, Dataset, load_fileset
from condorcof.plan import Plan, PlanOptions, make_plan
from condorcof.preprocess import FileCache, default_cache_path, preprocess
from condorcof.progress import Progress

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class PlanRequest:
    """Everything the planner needs from the user."""

    fileset: Path
    options: PlanOptions
    treename: str = DEFAULT_TREENAME
    skip_bad_files: bool = False
    use_cache: bool = True
    preprocess_workers: int = 8
    redirectors: tuple[str, ...] = ()


def plan_fileset(
    request: PlanRequest, show_progress: bool = False
) -> tuple[tuple[Dataset, ...], Plan]:
    """Read the fileset, preprocess its files and build the plan."""
    datasets = load_fileset(request.fileset, request.treename)
    cache = FileCache(default_cache_path() if request.use_cache else None)
    bar: Progress | None = None

    def report(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = Progress(total, 0, enabled=show_progress, unit="files read")
        bar.update(1, 0)
        if done == total:
            bar.close()

    pre = preprocess(
        datasets,
        skip_bad_files=request.skip_bad_files,
        cache=cache,
        max_workers=request.preprocess_workers,
        progress=report,
        redirectors=request.redirectors,
    )
    for skipped in pre.skipped:
        log.warning("skipping %s (dataset %s): %s", skipped.path, skipped.dataset, skipped.reason)
    return datasets, make_plan(datasets, pre, request.options)
