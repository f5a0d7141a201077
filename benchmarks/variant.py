"""One measurement, in its own process: ``python benchmarks/variant.py VARIANT ARGS...``.

Variants: ``floor`` (uproot + numpy by hand), ``condorcof`` (``condorcof.worker.run_job`` on a job
spec written by ``run.py``, running ``examples/dimuon_vbf.py``), ``coffea`` (``processor.Runner``).
Prints one JSON line: the analysis time (from just before the file is opened to the result in
hand; the libraries are imported before it starts and timed separately), the events, the peak
resident memory of this process (``ru_maxrss``) and the histogram contents for the comparison.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent


def _hist_data(h) -> list:
    values = h.values().tolist()
    variances = h.variances()
    return [values, variances.tolist() if variances is not None else None]


def _normalised(out: dict) -> dict:
    """Histograms as [values, variances] lists, plus cutflow and sum of weights."""
    res = {}
    for key in ("dimuon_mass", "dimuon_mass_vbf", "mjj"):
        res[key] = _hist_data(out[key])
    res["njets"] = [out["njets"].values().tolist(), None]
    res["cutflow"] = dict(out["cutflow"])
    res["sumw"] = out["sumw"]
    return res


def run_floor(args) -> tuple[dict, float]:
    sys.path.insert(0, str(HERE))
    import floor

    chunks = json.loads(args.chunks)
    t0 = time.perf_counter()
    out = floor.run(args.file, [tuple(c) for c in chunks], is_mc=True)
    seconds = time.perf_counter() - t0
    res = {
        k: [v[0].tolist(), v[1].tolist()]
        for k, v in out.items()
        if k in ("dimuon_mass", "dimuon_mass_vbf", "mjj")
    }
    res["njets"] = [out["njets"].tolist(), None]
    res["cutflow"] = out["cutflow"]
    res["sumw"] = out["sumw"]
    return res, seconds


def run_condorcof(args) -> tuple[dict, float]:
    import hist  # noqa: F401  (what the worker's processor imports anyway)

    import condorcof.events  # noqa: F401
    from condorcof.jobspec import JobSpec, partial_name
    from condorcof.safepickle import load_pickle
    from condorcof.worker import run_job

    spec = JobSpec.from_json(json.loads(Path(args.spec).read_text()))
    outdir = Path(tempfile.mkdtemp(prefix="bench-condorcof-"))
    t0 = time.perf_counter()
    manifest = run_job(spec, outdir)
    seconds = time.perf_counter() - t0
    partial = load_pickle(outdir / partial_name(spec.job))
    out = partial["accumulator"]["bench"]
    (outdir / partial_name(spec.job)).unlink()
    res = _normalised(out)
    res["timings"] = manifest["timings"]
    del res["timings"]["per_chunk"]
    return res, seconds


def run_coffea(args) -> tuple[dict, float]:
    sys.path.insert(0, str(HERE))
    import coffea_analysis

    t0 = time.perf_counter()
    out = coffea_analysis.run(args.file, args.chunksize, is_mc=True)
    seconds = time.perf_counter() - t0
    return _normalised(out), seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("variant", choices=["floor", "condorcof", "coffea"])
    parser.add_argument("file")
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument("--chunks", help="floor: JSON list of [start, stop]")
    parser.add_argument("--spec", help="condorcof: the job spec")
    args = parser.parse_args()
    t_imports = time.perf_counter()
    if args.variant == "floor":
        import numpy  # noqa: F401
        import uproot  # noqa: F401
    elif args.variant == "condorcof":
        import hist  # noqa: F401
        import uproot  # noqa: F401

        import condorcof.events  # noqa: F401
        import condorcof.worker  # noqa: F401
    else:
        import coffea.processor  # noqa: F401
        import hist  # noqa: F401
    imports = time.perf_counter() - t_imports
    run = {"floor": run_floor, "condorcof": run_condorcof, "coffea": run_coffea}[args.variant]
    result, seconds = run(args)
    events = result["cutflow"]["all"]
    print(
        json.dumps(
            {
                "variant": args.variant,
                "events": events,
                "seconds": seconds,
                "imports": imports,
                "in_process": time.perf_counter() - T_START,
                "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "result": result,
            }
        )
    )


if __name__ == "__main__":
    main()
