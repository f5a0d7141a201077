"""End to end on the pool: one large file through the real DAG, next to ``condorcof run``.

    python benchmarks/pool_e2e.py FILE.root [--chunksize 100000] [--job-events 250000] [--workdir DIR]

Run it as the submitting user (not root) with the pool up (.ci/pool-up). Prints the wall time
from ``submit`` to the result, events/s, how much of the wall time the jobs spent processing
(the rest is scheduling, transfer and merging), and the same analysis with ``condorcof run``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PROCESSOR = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"
EXE = str(Path(sys.executable).parent / "condorcof")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument("--chunksize", default="100000")
    parser.add_argument("--job-events", default="250000")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="condorcof-e2e-", dir=os.getcwd()))
    fileset = workdir / "fileset.json"
    fileset.write_text(
        json.dumps({"DY": {"files": {args.file: "Events"}, "metadata": {"isMC": True}}})
    )
    common = ["--chunksize", args.chunksize, "--no-cache"]

    from condorcof.rundir import load_run_info
    from condorcof.status import collect_status

    t0 = time.monotonic()
    subprocess.run([EXE, "submit", PROCESSOR, str(fileset), "--workdir", str(workdir), "--name", "e2e",
                    "--job-events", args.job_events, *common], check=True, capture_output=True)  # fmt: skip
    info = load_run_info(workdir / "e2e")
    while collect_status(info).state in ("running", "unknown (schedd unreachable)"):
        time.sleep(1)
    wall = time.monotonic() - t0
    status = collect_status(info)
    assert status.state == "done", status.to_json()
    manifests = [json.loads(p.read_text()) for p in (info.path / "outputs").glob("manifest_*.json")]
    busy = sum(m["timings"]["total"] for m in manifests)
    events = sum(m["events"] for m in manifests)

    t0 = time.monotonic()
    subprocess.run([EXE, "run", PROCESSOR, str(fileset), "-o", str(workdir / "local.pkl"), "--quiet", *common],
                   check=True, capture_output=True)  # fmt: skip
    local = time.monotonic() - t0

    print(
        f"events: {events} in {len(manifests)} chunk jobs ({args.chunksize}-event chunks, "
        f"{args.job_events} events per job)"
    )
    print(
        f"DAG on the pool : wall {wall:6.1f} s  {events / wall:10,.0f} ev/s  "
        f"jobs busy {busy:6.1f} s (sum over jobs; 2 slots), scheduling/transfer/merge the rest"
    )
    print(
        f"condorcof run   : wall {local:6.1f} s  {events / local:10,.0f} ev/s  (local process pool, same plan)"
    )


if __name__ == "__main__":
    main()
