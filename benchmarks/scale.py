"""Scale benchmark: planning 100,000 files (1,000,000 chunks), writing the run directory,
``Submit.from_dag`` on the 100k-node DAG, status of a 100k-node run, and merging 10,000 partials.

    python benchmarks/scale.py [--files 100000] [--partials 10000] [--workdir DIR]

Each stage runs in a fresh subprocess so its peak memory (ru_maxrss) is its own.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STAGES = ("plan", "write", "from_dag", "status", "merge")


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def synthetic_plan(files: int):
    from condorcof.fileset import Dataset, FileSpec
    from condorcof.plan import PlanOptions, make_plan
    from condorcof.preprocess import FileInfo, Preprocessed

    per = files // 10
    datasets = [Dataset(f"ds{d}", tuple(FileSpec(f"/store/ds{d}/f{i}.root", "Events") for i in range(per)), {})
                for d in range(10)]  # fmt: skip
    pre = Preprocessed({ds.name: tuple(FileInfo(f.path, "Events", 1_000_000, "u") for f in ds.files)
                        for ds in datasets}, ())  # fmt: skip
    return make_plan(datasets, pre, PlanOptions(chunksize=100_000, job_events=1_000_000))


def stage_plan(args) -> dict:
    t0 = time.perf_counter()
    plan = synthetic_plan(args.files)
    return {"seconds": time.perf_counter() - t0, "chunks": len(plan.chunks), "jobs": len(plan.jobs)}


def stage_write(args) -> dict:
    from condorcof.processor import ProcessorSpec
    from condorcof.rundir import write_run
    from condorcof.sites import load_profile

    plan = synthetic_plan(args.files)
    t0 = time.perf_counter()
    write_run(
        Path(args.workdir) / "run",
        "scale",
        plan,
        ProcessorSpec("m", "P", {}, None),
        load_profile("local"),
    )
    return {"seconds": time.perf_counter() - t0, "nodes": len(plan.jobs) + len(plan.merges)}


def stage_from_dag(args) -> dict:
    import htcondor2

    run = Path(args.workdir) / "run"
    os.chdir(run)
    t0 = time.perf_counter()
    sub = htcondor2.Submit.from_dag("workflow.dag", {"maxidle": 1000})
    return {"seconds": time.perf_counter() - t0, "accepted": "condor_dagman" in str(sub)}


def stage_status(args) -> dict:
    """A 100k-node run half done: status file, manifests of half the jobs."""
    from condorcof.plan import load_plan
    from condorcof.rundir import load_run_info
    from condorcof.status import collect_status

    run = Path(args.workdir) / "run"
    plan = load_plan(run / "plan.json")
    ads = [
        '[\n  Type = "DagStatus";\n  DagStatus = 3;\n  NodesTotal = %d;\n]'
        % (len(plan.jobs) + len(plan.merges))
    ]
    for k, job in enumerate(plan.jobs):
        done = k % 2 == 0
        ads.append(
            '[\n  Type = "NodeStatus";\n  Node = "%s";\n  NodeStatus = %d;\n  StatusDetails = "";\n'
            "  RetryCount = 0;\n  JobProcsQueued = 0;\n  JobProcsHeld = 0;\n]"
            % (job.name, 5 if done else 3)
        )
        if done:
            chunks = list(job.chunk_indices)
            (run / "outputs" / f"manifest_{job.name}.json").write_text(
                json.dumps({"job": job.name, "chunks": chunks})
            )
    ads.append('[\n  Type = "StatusEnd";\n  EndTime = 0;\n  NextUpdate = 5;\n]')
    (run / "workflow.dag.status").write_text("\n".join(ads))
    del plan
    t0 = time.perf_counter()
    status = collect_status(load_run_info(run), query_schedd=False)
    return {
        "seconds": time.perf_counter() - t0,
        "done": status.chunks["done"],
        "events": status.events_processed,
    }


def stage_merge(args) -> dict:
    """10,000 partials of 20 histograms x 100 bins x 10 datasets: one 16-input merge node, and
    one stream over all of them (the whole tree's work in one process)."""
    import hist
    import numpy as np

    from condorcof.jobspec import PARTIAL_FORMAT
    from condorcof.merge import merge_files
    from condorcof.safepickle import dump_pickle

    folder = Path(args.workdir) / "partials"
    folder.mkdir(exist_ok=True)
    rng = np.random.default_rng(1)
    acc = {}
    for d in range(10):
        acc[f"ds{d}"] = {}
        for h in range(20):
            histogram = hist.Hist.new.Reg(100, 0, 1, name="x").Weight()
            histogram.fill(x=rng.random(1000), weight=rng.random(1000))
            acc[f"ds{d}"][f"h{h}"] = histogram
    payload = {
        "format": PARTIAL_FORMAT,
        "accumulator": acc,
        "chunks": np.arange(1),
        "events": np.ones(1, int),
    }
    first = folder / "partial_0.pkl"
    dump_pickle(payload, first)
    paths = [first]
    for i in range(1, args.partials):  # hard links: same bytes, no 4 GB of disk
        path = folder / f"partial_{i}.pkl"
        if not path.exists():
            os.link(first, path)
        paths.append(path)
    t0 = time.perf_counter()
    merge_files(paths[:16])
    node = time.perf_counter() - t0
    t0 = time.perf_counter()
    merged = merge_files(paths)
    total = time.perf_counter() - t0
    expected = args.partials * acc["ds0"]["h0"].sum().value
    assert abs(merged["accumulator"]["ds0"]["h0"].sum().value - expected) < 1e-6 * expected
    return {"seconds": total, "node_16_seconds": node, "partial_kb": first.stat().st_size / 1024}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--partials", type=int, default=10_000)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--stage", choices=STAGES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.stage:
        result = globals()[f"stage_{args.stage}"](args)
        result["peak_mb"] = peak_mb()
        print(json.dumps(result))
        return
    workdir = args.workdir or tempfile.mkdtemp(prefix="condorcof-scale-", dir=os.getcwd())
    print(f"{'stage':10} {'seconds':>9} {'peak MB':>9}  details")
    for stage in STAGES:
        cmd = [sys.executable, __file__, "--stage", stage, "--files", str(args.files),
               "--partials", str(args.partials), "--workdir", workdir]  # fmt: skip
        out = subprocess.run(cmd, capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{stage:10} FAILED: {out.stderr.strip().splitlines()[-1] if out.stderr else ''}")
            continue
        result = json.loads(out.stdout.strip().splitlines()[-1])
        details = {k: v for k, v in result.items() if k not in ("seconds", "peak_mb")}
        print(f"{stage:10} {result['seconds']:9.2f} {result['peak_mb']:9.0f}  {details}")


if __name__ == "__main__":
    main()
