"""Run the reference analysis three ways, check they agree, and print the table.

``python benchmarks/run.py FILE [FILE ...] [--repeats 5] [--chunksize 100000]``

For every file and repeat, each variant (``floor``, ``condorcof``, ``coffea``) runs in a fresh
process (``variant.py``), in an order that rotates from repeat to repeat, so that no variant
always runs first or after the same one. Reported per variant: the median analysis rate (events
per second from just before the file is opened to the result in hand), the median wall time of
the whole process (interpreter, imports, analysis), the median peak resident memory
(``ru_maxrss``), and the ratios to the floor and to coffea. The histograms, cutflow and sum of
weights of every variant are compared with the floor's first; coffea computes its pair masses
in float32 (coffea's four-vectors on the float32 branches), so an entry or two may sit in the
neighbouring bin, which is reported rather than hidden.

All variants run with the same interpreter, ``--python`` (default ``/root/bench-venv/bin/python``,
the environment coffea was installed into; condorcof comes from this checkout through
``PYTHONPATH``, as in a worker job, where condorcof's code travels with the job). When that
interpreter cannot import coffea, the variants run with this one and the coffea column is
skipped, and the table says so.

Then the per-job fixed costs of condorcof's worker on the first file: interpreter start,
imports, opening the file, the first events (schema of all branches), writing the output, and
a whole ``python -m condorcof.worker`` job of one small chunk.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
EXAMPLE = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"
VARIANTS = ("floor", "condorcof", "coffea")


def plan_job(path: str, chunksize: int, workdir: Path, max_events: int | None = None):
    """condorcof's own planning of one file into one job: (spec path, chunk ranges)."""
    from condorcof.jobspec import file_entry_counts, job_spec
    from condorcof.plan import PlanOptions
    from condorcof.planning import PlanRequest, plan_fileset
    from condorcof.processor import parse_processor_spec

    fileset = workdir / f"fileset-{Path(path).stem}-{chunksize}-{max_events}.json"
    fileset.write_text(
        json.dumps({"bench": {"files": {path: "Events"}, "metadata": {"isMC": True}}})
    )
    max_chunks = None if max_events is None else 1
    options = PlanOptions(
        chunksize=max_events or chunksize,
        max_chunks=max_chunks,
        job_events=10**12,
        max_chunks_per_job=10**6,
    )
    _, plan = plan_fileset(PlanRequest(fileset, options, use_cache=False))
    spec = job_spec(
        plan, plan.jobs[0], parse_processor_spec(EXAMPLE), "nanoaod", file_entry_counts(plan)
    )
    spec_path = fileset.with_suffix(".job.json")
    spec_path.write_text(json.dumps(spec.to_json()))
    return spec_path, [(c.entry_start, c.entry_stop) for c in spec.chunks]


def coffea_works(python: str) -> str | None:
    """None if ``python`` can import coffea, else why not."""
    if not Path(python).exists():
        return f"{python} does not exist"
    proc = subprocess.run([python, "-c", "import coffea.processor"], capture_output=True, text=True)
    return None if proc.returncode == 0 else proc.stderr.strip().splitlines()[-1]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_variant(variant: str, path: str, args, spec: Path, chunks: list) -> dict:
    cmd = [args.python, str(HERE / "variant.py"), variant, path, "--chunksize", str(args.chunksize)]
    if variant == "floor":
        cmd += ["--chunks", json.dumps(chunks)]
    if variant == "condorcof":
        cmd += ["--spec", str(spec)]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO, env=_env())
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{variant} on {path} failed:\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(proc.stdout.strip().splitlines()[-1])
    data["wall"] = wall
    return data


def compare(ref: dict, other: dict, float32: bool) -> str:
    """'same' or a description of the differences from the floor's result."""
    problems, moved = [], 0
    if ref["cutflow"] != other["cutflow"]:
        problems.append(f"cutflow {other['cutflow']} != {ref['cutflow']}")
    if not np.isclose(ref["sumw"], other["sumw"], rtol=1e-9, atol=0):
        problems.append(f"sumw {other['sumw']} != {ref['sumw']}")
    if not np.array_equal(ref["njets"][0], other["njets"][0]):
        problems.append("njets differ")
    for key in ("dimuon_mass", "dimuon_mass_vbf", "mjj"):
        for i, what in ((0, "values"), (1, "variances")):
            a, b = np.asarray(ref[key][i]), np.asarray(other[key][i])
            if np.allclose(a, b, rtol=1e-9, atol=1e-6):
                continue
            diff_bins = int((~np.isclose(a, b, rtol=1e-9, atol=1e-6)).sum())
            same_total = np.isclose(a.sum(), b.sum(), rtol=1e-9)
            if float32 and same_total and diff_bins <= 6:
                moved = max(moved, diff_bins)
                continue
            problems.append(
                f"{key} {what}: {diff_bins} bins differ (totals {a.sum()} vs {b.sum()})"
            )
    if problems:
        return "DIFFERENT: " + "; ".join(problems)
    if moved:
        return f"same up to float32 rounding ({moved} bins with an entry moved to a neighbour)"
    return "same"


def fixed_costs(path: str, args, workdir: Path) -> list[tuple[str, float, str]]:
    """Per-job fixed costs of the worker, medians of ``args.repeats`` fresh processes."""
    py = args.python
    sys_path = f"import sys; sys.path.insert(0, {str(REPO / 'examples')!r}); "

    def wall(code: list[str]) -> float:
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            subprocess.run(code, check=True, capture_output=True, cwd=REPO, env=_env())
            times.append(time.perf_counter() - t0)
        return statistics.median(times)

    def inner(code: str) -> dict:
        """Run ``code`` (which prints a JSON dict of timings) in fresh processes; medians."""
        runs = []
        for _ in range(args.repeats):
            out = subprocess.run(
                [py, "-c", code], check=True, capture_output=True, text=True, cwd=REPO, env=_env()
            )
            runs.append(json.loads(out.stdout.strip().splitlines()[-1]))
        return {k: statistics.median(r[k] for r in runs) for k in runs[0]}

    rows = []
    t_python = wall([py, "-c", "pass"])
    rows.append(("interpreter start (`python -c pass`)", t_python, "process"))
    t_worker = wall([py, "-c", "import condorcof.worker"])
    rows.append(("`python -c 'import condorcof.worker'`", t_worker, "process"))
    t_all = wall([py, "-c", sys_path + "import condorcof.worker, condorcof.events, dimuon_vbf"])
    rows.append(
        ("... + condorcof.events and the example processor (all a job imports)", t_all, "process")
    )
    if py != sys.executable:
        main_env = [
            sys.executable,
            "-c",
            sys_path + "import condorcof.worker, condorcof.events, dimuon_vbf",
        ]
        rows.append(
            (
                f"the same imports with {sys.executable} (where sympy is installed, which "
                "vector imports when present)",
                wall(main_env),
                "process",
            )
        )
    timing = inner(
        sys_path + "import json, time, uproot, condorcof.events as ce\n"
        "t0 = time.perf_counter(); f = uproot.open(" + repr(path) + "); tree = f['Events']\n"
        "t1 = time.perf_counter(); ev = ce.make_events(tree, 0, 1000, {})\n"
        "t2 = time.perf_counter(); ev = ce.make_events(tree, 1000, 2000, {})\n"
        "t3 = time.perf_counter(); ev.Muon.pt; t4 = time.perf_counter()\n"
        "print(json.dumps({'open': t1 - t0, 'first': t2 - t1, 'next': t3 - t2, 'pt': t4 - t3}))"
    )
    rows.append(
        (
            "open the file and its tree (uproot reads every branch's metadata)",
            timing["open"],
            "in process",
        )
    )
    rows.append(
        ("first make_events on the tree (schema of all branches)", timing["first"], "in process")
    )
    rows.append(("each further make_events (per chunk)", timing["next"], "in process"))
    spec, _ = plan_job(path, args.chunksize, workdir, max_events=1000)
    outdir = workdir / "fixed"
    t_job = wall([py, "-m", "condorcof.worker", str(spec), "--outdir", str(outdir)])
    manifests = []
    for _ in range(args.repeats):
        subprocess.run(
            [py, "-m", "condorcof.worker", str(spec), "--outdir", str(outdir)],
            check=True,
            capture_output=True,
            cwd=REPO,
            env=_env(),
        )
        manifests.append(json.loads(next(outdir.glob("manifest_*.json")).read_text())["timings"])
    t_write = statistics.median(m["write"] for m in manifests)
    rows.append(("write the partial and manifest (`timings.write`)", t_write, "in process"))
    rows.append(
        ("whole `python -m condorcof.worker` job of 1 chunk of 1000 events", t_job, "process")
    )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--chunksize", type=int, default=100_000)
    parser.add_argument(
        "--python",
        default="/root/bench-venv/bin/python",
        help="the interpreter of every variant (default: coffea's venv)",
    )
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--no-fixed-costs", action="store_true")
    parser.add_argument("--json", help="also write every measurement here")
    args = parser.parse_args()
    variants = [v for v in args.variants.split(",") if v]
    notes = []
    why = coffea_works(args.python)
    if why:
        notes.append(f"coffea column skipped: {why}; every variant ran with {sys.executable}")
        args.python = sys.executable
        if "coffea" in variants:
            variants.remove("coffea")
    else:
        notes.append(f"every variant ran with {args.python}")
    workdir = Path(tempfile.mkdtemp(prefix="condorcof-bench-"))
    jobs = {path: plan_job(os.path.abspath(path), args.chunksize, workdir) for path in args.files}
    runs: dict[tuple[str, str], list[dict]] = {}
    for r in range(args.repeats):
        for path in args.files:
            order = variants[r % len(variants) :] + variants[: r % len(variants)]
            for variant in order:
                spec, chunks = jobs[path]
                data = run_variant(variant, os.path.abspath(path), args, spec, chunks)
                runs.setdefault((path, variant), []).append(data)
                print(
                    f"# repeat {r + 1} {Path(path).name} {variant}: {data['events'] / data['seconds']:,.0f} ev/s "
                    f"({data['seconds']:.2f} s, wall {data['wall']:.2f} s, {data['maxrss_mb']:.0f} MB)",
                    file=sys.stderr,
                    flush=True,
                )

    print(
        "| file | variant | events | analysis ev/s (median) | x floor | x coffea | process wall s "
        "| peak RSS MB | x floor | same result as floor |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    summary = {}
    for path in args.files:
        med = {}
        for variant in variants:
            rs = runs[(path, variant)]
            med[variant] = {
                "rate": statistics.median(d["events"] / d["seconds"] for d in rs),
                "wall": statistics.median(d["wall"] for d in rs),
                "rss": statistics.median(d["maxrss_mb"] for d in rs),
                "events": rs[0]["events"],
                "agree": compare(
                    runs[(path, "floor")][0]["result"], rs[0]["result"], variant == "coffea"
                )
                if "floor" in variants
                else "?",
            }
        for variant in variants:
            m = med[variant]
            x_floor = m["rate"] / med["floor"]["rate"] if "floor" in med else float("nan")
            x_coffea = m["rate"] / med["coffea"]["rate"] if "coffea" in med else float("nan")
            rss_floor = m["rss"] / med["floor"]["rss"] if "floor" in med else float("nan")
            print(
                f"| {Path(path).name} | {variant} | {m['events']:,} | {m['rate']:,.0f} | {x_floor:.2f} "
                f"| {x_coffea:.2f} | {m['wall']:.2f} | {m['rss']:.0f} | {rss_floor:.2f} | {m['agree']} |"
            )
        summary[path] = med
    for note in notes:
        print(f"\n{note}")
    if "condorcof" in variants:
        stages = {}
        for path in args.files:
            timings = [d["result"]["timings"] for d in runs[(path, "condorcof")]]
            stages[path] = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
        print(
            "\ncondorcof worker stages (median s): "
            + "; ".join(
                f"{Path(p).name}: " + ", ".join(f"{k} {v:.3f}" for k, v in s.items())
                for p, s in stages.items()
            )
        )
    if not args.no_fixed_costs:
        print(
            f"\nPer-job fixed costs of the worker on {Path(args.files[0]).name} (median of {args.repeats}):\n"
        )
        print("| what | seconds | measured |")
        print("|---|---|---|")
        for what, seconds, how in fixed_costs(os.path.abspath(args.files[0]), args, workdir):
            print(f"| {what} | {seconds:.3f} | {how} |")
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    f"{p}|{v}": [{k: d[k] for k in d if k != "result"} for d in rs]
                    for (p, v), rs in runs.items()
                },
                indent=1,
            )
        )


if __name__ == "__main__":
    main()
