"""The job bundle: condorcof's own code plus the user's analysis folder, in one zip.

The zip is runnable (``python bundle.zip worker SPEC``): its ``__main__`` creates the output
folder first (so HTCondor always finds it), unpacks the bundle beside itself and dispatches to
the worker or the merge. Nothing on the execute node needs condorcof installed.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

from condorcof.errors import SubmitError

BUNDLE_NAME = "bundle.zip"
USER_DIR = "user"
MAX_USER_BYTES = 200 * 1024 * 1024
_SKIP_DIRS = {"__pycache__", ".git", ".hg", ".svn", ".tox", ".nox", ".venv", "venv", "node_modules",
              "condorcof-runs", ".ipynb_checkpoints", ".pytest_cache", ".mypy_cache"}  # fmt: skip
_SKIP_SUFFIXES = {".root", ".pkl", ".pyc", ".parquet", ".h5", ".zip", ".tar", ".gz"}

BOOTSTRAP = '''"""condorcof job bootstrap: python bundle.zip (worker|merge) ARGS..."""
import os
import sys
import zipfile

os.makedirs("outputs", exist_ok=True)  # declared in transfer_output_files: must always exist
bundle = os.path.abspath(sys.argv[0])
root = os.path.join(os.getcwd(), "_condorcof_bundle")
with zipfile.ZipFile(bundle) as archive:
    archive.extractall(root)
sys.path[0] = root
os.environ["CONDORCOF_BUNDLE"] = root
command, args = sys.argv[1], sys.argv[2:]
if command == "worker":
    from condorcof.worker import main
elif command == "merge":
    from condorcof.merge import main
else:
    sys.exit("condorcof bundle: unknown command %r" % command)
sys.exit(main(args))
'''


def package_files() -> list[tuple[Path, str]]:
    """condorcof's own modules, as (source, name in the zip)."""
    root = Path(__file__).resolve().parent
    return [(p, f"condorcof/{p.name}") for p in sorted(root.glob("*.py"))]


def user_files(folder: Path) -> list[tuple[Path, str]]:
    """The analysis folder's files (code, small tables), skipping data and tool folders."""
    out: list[tuple[Path, str]] = []
    total = 0
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in _SKIP_DIRS and not d.startswith("."))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            if path.suffix in _SKIP_SUFFIXES or name.startswith("."):
                continue
            total += path.stat().st_size
            out.append((path, f"{USER_DIR}/{path.relative_to(folder).as_posix()}"))
    if total > MAX_USER_BYTES:
        raise SubmitError(
            f"the analysis folder {folder} holds {total / 1e6:.0f} MB of files to ship with every job; "
            "move data out of it and pass large inputs with --input-files"
        )
    return out


def write_bundle(path: Path, user_folder: Path | None) -> list[str]:
    """Write the bundle zip; returns the names it holds."""
    entries = package_files() + (user_files(user_folder) if user_folder else [])
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("__main__.py", BOOTSTRAP)
        for source, name in entries:
            archive.write(source, name)
    os.replace(tmp, path)
    return ["__main__.py"] + [name for _, name in entries]
