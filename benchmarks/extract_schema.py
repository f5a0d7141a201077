"""Write the branch layout of a real NanoAOD file as JSON, for ``generate.py`` to imitate.

``python benchmarks/extract_schema.py REAL_NANOAOD.root [-o benchmarks/nanoaod_v13_schema.json]``

Only metadata leaves the file: branch names in file order, their type, the counter of each
jagged branch, and the mean and maximum multiplicity of each counter over the file's events.
The committed ``nanoaod_v13_schema.json`` was made from ``ggH_M125_amcatnlo_v13.root`` (a real
Run-3 NanoAODv13 file, 1741 branches, 616 HLT_* and 407 L1_* booleans; see shared/data).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import uproot


def extract(path: str, treename: str = "Events") -> dict:
    tree = uproot.open(path)[treename]
    branches = []
    counters = {}
    for b in tree.branches:
        interp = b.interpretation
        count = b.count_branch
        if count is not None:
            dtype = np.dtype(interp.content.to_dtype).newbyteorder("=").str
            branches.append([b.name, dtype, count.name])
            counters.setdefault(count.name, None)
        else:
            dtype = np.dtype(interp.to_dtype).newbyteorder("=").str
            branches.append([b.name, dtype, None])
    counts = tree.arrays(list(counters), library="np")
    for name in counters:
        values = counts[name].astype(np.int64)
        counters[name] = {"mean": round(float(values.mean()), 3), "max": int(values.max())}
    return {"source": Path(path).name, "branches": branches, "counters": counters}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file")
    parser.add_argument(
        "-o", "--output", default=str(Path(__file__).with_name("nanoaod_v13_schema.json"))
    )
    args = parser.parse_args()
    schema = extract(args.file)
    text = json.dumps(schema, separators=(",", ":"))
    # one branch per line keeps diffs readable
    text = text.replace('],["', '],\n["')
    Path(args.output).write_text(text + "\n")
    print(f"{args.output}: {len(schema['branches'])} branches, {len(schema['counters'])} counters")


if __name__ == "__main__":
    main()
