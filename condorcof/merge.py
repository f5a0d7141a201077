"""Merge partials (streaming) and finalise a run with a completeness proof.

``python -m condorcof.merge -o OUT INPUT...`` adds partials into one partial.
``python -m condorcof.merge --final --plan plan.json --processor proc.json -o result.pkl INPUT...``
also checks that every planned chunk is present exactly once with the planned number of
events, runs ``postprocess`` and writes ``result.pkl`` plus a ``result.json`` report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from condorcof.accumulate import iadd
from condorcof.errors import CondorcofError, IncompleteResultError
from condorcof.jobspec import PARTIAL_FORMAT
from condorcof.plan import Plan, load_plan
from condorcof.processor import ProcessorLike, ProcessorSpec, build_processor, postprocess
from condorcof.safepickle import dump_pickle, load_pickle, write_json_atomic

RESULT_FORMAT = "condorcof-result/1"
EXIT_FAILED = 3


def load_partial(path: str | Path, extra_allowed: Sequence[str] = ()) -> dict[str, Any]:
    """Load one partial through the restricted unpickler and check its shape."""
    payload = load_pickle(path, extra_allowed=tuple(extra_allowed))
    if not isinstance(payload, dict) or payload.get("format") != PARTIAL_FORMAT:
        raise CondorcofError(f"{path} is not a condorcof partial output")
    return payload


def merge_payloads(payloads: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """Add partial payloads one at a time (only the running total stays in memory)."""
    total: dict[str, Any] | None = None
    chunks: list[np.ndarray] = []
    events: list[np.ndarray] = []
    skipped: list[np.ndarray] = []
    for payload in payloads:
        chunks.append(np.asarray(payload["chunks"], dtype=np.int64))
        events.append(np.asarray(payload["events"], dtype=np.int64))
        skipped.append(np.asarray(payload.get("skipped", ()), dtype=np.int64))
        if total is None:
            total = {"format": PARTIAL_FORMAT, "accumulator": payload["accumulator"]}
        elif payload["accumulator"] is not None:
            acc = total["accumulator"]
            total["accumulator"] = (
                payload["accumulator"] if acc is None else iadd(acc, payload["accumulator"])
            )
    if total is None:
        return None
    total["chunks"] = np.concatenate(chunks)
    total["events"] = np.concatenate(events)
    total["skipped"] = np.concatenate(skipped)
    return total


def merge_files(paths: Sequence[str | Path], extra_allowed: Sequence[str] = ()) -> dict[str, Any]:
    """Merge partial files; an empty list is an error."""
    merged = merge_payloads(load_partial(p, extra_allowed) for p in paths)
    if merged is None:
        raise CondorcofError("nothing to merge: no input partials given")
    return merged


def coverage_report(
    plan: Plan, chunks: np.ndarray, events: np.ndarray, skipped: np.ndarray | None = None
) -> dict[str, Any]:
    """Which planned chunks are missing, duplicated or short, with per-dataset totals.

    ``skipped`` chunks (their file was left out with ``resubmit --skip-bad-files``) count as
    accounted for, and are listed with their files; their events are not processed.
    """
    n = len(plan.chunks)
    skipped = np.zeros(0, np.int64) if skipped is None else np.asarray(skipped, dtype=np.int64)
    every = np.concatenate([chunks, skipped])
    unknown = every[(every < 0) | (every >= n)]
    valid = (chunks >= 0) & (chunks < n)
    counts = np.bincount(chunks[valid], minlength=n)
    seen = counts + np.bincount(skipped[(skipped >= 0) & (skipped < n)], minlength=n)
    read = np.bincount(chunks[valid], weights=events[valid], minlength=n).astype(np.int64)
    planned = np.array([c.num_entries for c in plan.chunks], dtype=np.int64)
    missing = np.flatnonzero(seen == 0)
    duplicated = np.flatnonzero(seen > 1)
    wrong = np.flatnonzero((counts == 1) & (read != planned))
    names = [ds.name for ds in plan.datasets]
    position = {name: i for i, name in enumerate(names)}
    ds_of_chunk = np.array([position[c.dataset] for c in plan.chunks], dtype=np.int64)
    datasets = {}
    for i, (ds, total) in enumerate(plan.events_per_dataset().items()):
        mask = ds_of_chunk == i
        done = int(read[mask & (counts == 1)].sum())
        datasets[ds] = {
            "events_planned": int(total),
            "events_processed": done,
            "fraction": 1.0 if total == 0 else done / total,
            "chunks_planned": int(mask.sum()),
            "chunks_processed": int((mask & (counts >= 1)).sum()),
            "chunks_skipped": int((mask & (seen > counts)).sum()),
        }
    skipped_chunks = [plan.chunks[i] for i in sorted(set(skipped.tolist())) if 0 <= i < n]
    return {
        "chunks_planned": n,
        "missing": missing.tolist(),
        "duplicated": duplicated.tolist(),
        "wrong_events": wrong.tolist(),
        "unknown": unknown.tolist(),
        "events_planned": int(planned.sum()),
        "events_processed": int(read[counts == 1].sum()),
        "datasets": datasets,
        "skipped_files": [dict(vars(s)) for s in plan.skipped] + _skipped_files(skipped_chunks),
        "skipped_chunks": [c.index for c in skipped_chunks],
        "complete": not (len(missing) or len(duplicated) or len(wrong) or len(unknown)),
    }


def _skipped_files(chunks: list[Any]) -> list[dict[str, Any]]:
    files = {(c.dataset, c.path, c.treename) for c in chunks}
    reason = "left out after a failure (resubmit --skip-bad-files)"
    return [{"dataset": d, "path": p, "treename": t, "reason": reason} for d, p, t in sorted(files)]


def check_complete(plan: Plan, report: dict[str, Any], allow_incomplete: bool) -> None:
    """Raise :class:`IncompleteResultError` naming the culprits unless allowed."""
    problems = []
    for key, what in (("duplicated", "counted more than once"), ("unknown", "not in the plan")):
        if report[key]:
            problems.append(f"{len(report[key])} chunk(s) {what}: {_describe(plan, report[key])}")
    if not allow_incomplete:
        for key, what in (
            ("missing", "missing"),
            ("wrong_events", "with the wrong number of events"),
        ):
            if report[key]:
                problems.append(
                    f"{len(report[key])} chunk(s) {what}: {_describe(plan, report[key])}"
                )
    if problems:
        raise IncompleteResultError("the result is not complete:\n  " + "\n  ".join(problems))


def _describe(plan: Plan, indices: list[int], limit: int = 5) -> str:
    shown = [
        plan.chunks[i].describe() if 0 <= i < len(plan.chunks) else f"chunk {i}"
        for i in indices[:limit]
    ]
    more = f" and {len(indices) - limit} more" if len(indices) > limit else ""
    return "; ".join(shown) + more


def finalize(
    plan: Plan,
    merged: dict[str, Any] | None,
    processor: ProcessorLike,
    allow_incomplete: bool = False,
) -> dict[str, Any]:
    """Check completeness, run ``postprocess``; return the result payload."""
    if merged is None:
        merged = {
            "accumulator": None,
            "chunks": np.zeros(0, np.int64),
            "events": np.zeros(0, np.int64),
        }
    report = coverage_report(plan, merged["chunks"], merged["events"], merged.get("skipped"))
    check_complete(plan, report, allow_incomplete)
    output = postprocess(processor, merged["accumulator"])
    return {"format": RESULT_FORMAT, "output": output, "report": report}


def write_result(result: dict[str, Any], path: str | Path) -> None:
    """Write ``result.pkl`` and its JSON report beside it, atomically."""
    path = Path(path)
    dump_pickle(result, path)
    write_json_atomic(path.with_suffix(".json"), result["report"])


def load_result(path: str | Path, extra_allowed: Sequence[str] = ()) -> dict[str, Any]:
    """Read a result payload (``output`` and ``report``) through the restricted unpickler."""
    payload = load_pickle(path, extra_allowed=tuple(extra_allowed))
    if not isinstance(payload, dict) or payload.get("format") != RESULT_FORMAT:
        raise CondorcofError(f"{path} is not a condorcof result")
    return payload


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m condorcof.merge``."""
    parser = argparse.ArgumentParser(prog="condorcof.merge", description=__doc__.splitlines()[0])
    parser.add_argument("inputs", nargs="*", help="partial files to merge")
    parser.add_argument("-o", "--output", required=True)
    parser.add_argument("--final", action="store_true", help="check completeness and postprocess")
    parser.add_argument("--plan", help="plan.json (with --final)")
    parser.add_argument("--processor", help="processor spec JSON (with --final)")
    parser.add_argument("--allow-incomplete", action="store_true")
    parser.add_argument(
        "--allow-class", action="append", default=[], help="extra class to unpickle"
    )
    args = parser.parse_args(argv)
    t0 = time.perf_counter()
    try:
        merged = merge_files(args.inputs, args.allow_class) if args.inputs else None
        if args.final:
            if not (args.plan and args.processor):
                parser.error("--final needs --plan and --processor")
            spec = ProcessorSpec.from_json(json.loads(Path(args.processor).read_text()))
            result = finalize(
                load_plan(args.plan), merged, build_processor(spec), args.allow_incomplete
            )
            write_result(result, args.output)
        elif merged is None:
            raise CondorcofError("nothing to merge: no input partials given")
        else:
            dump_pickle(merged, args.output)
    except CondorcofError as err:
        print(f"condorcof.merge: {err}", file=sys.stderr)
        return EXIT_FAILED
    print(
        f"condorcof.merge: {len(args.inputs)} inputs -> {args.output} in {time.perf_counter() - t0:.2f} s"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
