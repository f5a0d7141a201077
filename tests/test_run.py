"""``condorcof run`` end to end on the real files, against an independent computation."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from independent import assert_matches, assert_same_output, expected

import condorcof
from condorcof.cli import cli

REPO = Path(__file__).resolve().parents[1]
PROCESSOR = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"
SAMPLES = {  # dataset: (file, isMC)
    "DY": ("nano_dy.root", True),
    "Data": ("nano_dimuon.root", False),
    "TT_v15": ("nano_tt_v15.root", True),
    "ggH_lzma": ("ggH_M125_amcatnlo_v13.root", True),
    "Empty": ("nano_dy_empty.root", True),
    "NoLumi": ("missing_luminosityBlock.root", True),
    "SpecialTree": ("nano_dy_SpecialTree.root", True),
    "PFNano_lzma": ("pfnano.root", True),
    "NoMuons": ("nano_tree.root", True),
}


def write_fileset(
    tmp_path: Path, data: Path, samples: dict[str, tuple[str, bool]] = SAMPLES
) -> Path:
    fileset = {
        name: {"files": {str(data / f): "Events"}, "metadata": {"isMC": mc}}
        for name, (f, mc) in samples.items()
    }
    path = tmp_path / "fileset.json"
    path.write_text(json.dumps(fileset))
    return path


def run_cli(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["run", "--quiet", *args])
    return result.exit_code, result.output + (
        str(result.exception) if result.exit_code and result.exception else ""
    )


def test_run_matches_independent_computation(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "result.pkl"
    code, text = run_cli(
        PROCESSOR,
        str(write_fileset(tmp_path, data)),
        "-o",
        str(out),
        "--workers",
        "2",
        "--chunksize",
        "15",
    )
    assert code == 0, text
    output = condorcof.load(str(out))
    for name, (f, mc) in SAMPLES.items():
        if name == "Empty":
            assert name not in output  # no chunk, so the processor never saw it
            continue
        assert_matches(output[name], expected(data / f, mc))
    report = condorcof.load_report(str(out))
    assert report["complete"] and report["events_planned"] == report["events_processed"]
    assert report["datasets"]["TT_v15"] == {
        "events_planned": 200,
        "events_processed": 200,
        "fraction": 1.0,
        "chunks_planned": 13,
        "chunks_skipped": 0,
        "chunks_processed": 13,
    }


@pytest.mark.parametrize(
    "options",
    [
        ["--workers", "1", "--chunksize", "1000"],
        ["--workers", "2", "--chunksize", "7", "--job-events", "30", "--merge-fanin", "2"],
        ["--workers", "2", "--chunksize", "33", "--job-events", "1000"],
    ],
)
def test_same_result_for_any_workers_chunking_and_packing(
    tmp_path: Path, data: Path, options: list[str]
) -> None:
    fileset = str(write_fileset(tmp_path, data))
    code, text = run_cli(
        PROCESSOR, fileset, "-o", str(tmp_path / "a.pkl"), "--workers", "1", "--chunksize", "50"
    )
    assert code == 0, text
    code, text = run_cli(PROCESSOR, fileset, "-o", str(tmp_path / "b.pkl"), *options)
    assert code == 0, text
    assert_same_output(
        condorcof.load(str(tmp_path / "a.pkl")), condorcof.load(str(tmp_path / "b.pkl"))
    )


def test_max_chunks_limits_work_and_is_recorded(tmp_path: Path, data: Path) -> None:
    out = tmp_path / "r.pkl"
    code, text = run_cli(
        PROCESSOR,
        str(write_fileset(tmp_path, data, {"TT": ("nano_tt_v15.root", True)})),
        "-o",
        str(out),
        "--chunksize",
        "10",
        "--max-chunks",
        "3",
    )
    assert code == 0, text
    assert condorcof.load(str(out))["TT"]["cutflow"]["all"] == 30
    assert_matches(condorcof.load(str(out))["TT"], expected(data / "nano_tt_v15.root", True, 0, 30))


def test_skip_bad_files_records_the_skipped_file(tmp_path: Path, data: Path) -> None:
    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps(
            {
                "DY": {
                    "files": {
                        str(data / "nano_dy.root"): "Events",
                        str(data / "bad_delphes.root"): "Events",
                    },
                    "metadata": {"isMC": True},
                }
            }
        )
    )
    out = tmp_path / "r.pkl"
    code, text = run_cli(PROCESSOR, str(fileset), "-o", str(out))
    assert code != 0 and "bad_delphes.root" in text and "no tree 'Events'" in text
    assert not out.exists()
    code, text = run_cli(PROCESSOR, str(fileset), "-o", str(out), "--skip-bad-files")
    assert code == 0, text
    assert "skipped file" in text and "bad_delphes.root" in text
    (skipped,) = condorcof.load_report(str(out))["skipped_files"]
    assert skipped["path"].endswith("bad_delphes.root") and skipped["dataset"] == "DY"
    assert_matches(condorcof.load(str(out))["DY"], expected(data / "nano_dy.root", True))


def _bad_inputs(tmp_path: Path, data: Path) -> dict[str, tuple[list[str], list[str]]]:
    good = str(write_fileset(tmp_path, data, {"DY": ("nano_dy.root", True)}))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({"DY": [str(tmp_path / "nope.root")]}))
    wrong_tree = tmp_path / "tree.json"
    wrong_tree.write_text(json.dumps({"DY": {"files": {str(data / "nano_dy.root"): "Evnets"}}}))
    garbage = tmp_path / "garbage.root"
    garbage.write_bytes(b"this is not a ROOT file" * 100)
    not_root = tmp_path / "notroot.json"
    not_root.write_text(json.dumps({"DY": [str(garbage)]}))
    malformed = tmp_path / "malformed.json"
    malformed.write_text('{"DY": {"files": ')
    broken = tmp_path / "broken_proc.py"
    broken.write_text("import no_such_module_anywhere\n")
    raising = tmp_path / "raising_proc.py"
    raising.write_text(
        "class Boom:\n"
        "    def process(self, events):\n"
        "        if events.metadata['entrystart'] == 20:\n"
        "            raise ValueError('calibration table has no entry for this run')\n"
        "        return {'n': len(events)}\n"
        "    def postprocess(self, acc):\n"
        "        return acc\n"
    )
    return {
        "missing file": ([PROCESSOR, str(missing)], ["nope.root", "no such file", "DY"]),
        "wrong tree": (
            [PROCESSOR, str(wrong_tree)],
            ["nano_dy.root", "no tree 'Evnets'", "Events"],
        ),
        "not ROOT": ([PROCESSOR, str(not_root)], ["garbage.root", "cannot be read as a ROOT file"]),
        "malformed fileset": ([PROCESSOR, str(malformed)], ["malformed.json", "not valid JSON"]),
        "missing fileset": ([PROCESSOR, str(tmp_path / "nofs.json")], ["nofs.json"]),
        "processor import": ([f"{broken}:Proc", good], ["broken_proc", "no_such_module_anywhere"]),
        "processor name": (
            [f"{REPO / 'examples' / 'dimuon_vbf.py'}:Nope", good],
            ["'Nope'", "DimuonVBF"],
        ),
        "processor args": ([PROCESSOR, good, "--processor-args", "[1]"], ["JSON object"]),
        "processor raises": (
            [f"{raising}:Boom", good, "--chunksize", "10"],
            [
                "calibration table has no entry",
                "nano_dy.root",
                "entries [20, 30)",
                "Traceback",
                "dataset 'DY'",
            ],
        ),
    }


@pytest.mark.parametrize(
    "case",
    [
        "missing file",
        "wrong tree",
        "not ROOT",
        "malformed fileset",
        "missing fileset",
        "processor import",
        "processor name",
        "processor args",
        "processor raises",
    ],
)
def test_bad_input_gives_clear_error_and_no_result(tmp_path: Path, data: Path, case: str) -> None:
    args, needles = _bad_inputs(tmp_path, data)[case]
    out = tmp_path / "result.pkl"
    code, text = run_cli(*args, "-o", str(out))
    assert code != 0, text
    for needle in needles:
        assert needle in text, f"{needle!r} not in:\n{text}"
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert "Traceback" not in text.split("Error:")[0] or case == "processor raises"


def test_installed_command_runs_the_example(tmp_path: Path, data: Path) -> None:
    exe = Path(sys.executable).parent / "condorcof"
    assert exe.exists(), "the console script is not installed beside the interpreter"
    out = tmp_path / "r.pkl"
    fileset = write_fileset(
        tmp_path, data, {"DY": ("nano_dy.root", True), "Data": ("nano_dimuon.root", False)}
    )
    proc = subprocess.run(
        [str(exe), "run", PROCESSOR, str(fileset), "-o", str(out), "-j", "2"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "result written to" in proc.stdout and "processed 80 events" in proc.stderr
    assert_matches(condorcof.load(str(out))["Data"], expected(data / "nano_dimuon.root", False))
    bad = subprocess.run(
        [str(exe), "run", PROCESSOR, str(tmp_path / "none.json")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "none.json" in bad.stderr and "Traceback" not in bad.stderr


def test_coffea_schema_without_coffea_is_a_clear_error(tmp_path: Path, data: Path) -> None:
    fileset = write_fileset(tmp_path, data, {"DY": ("nano_dy.root", True)})
    code, text = run_cli(
        PROCESSOR, str(fileset), "-o", str(tmp_path / "r.pkl"), "--schema", "coffea", "-j", "1"
    )
    assert code != 0 and "coffea" in text and "not installed" in text
    assert not (tmp_path / "r.pkl").exists()


def test_ctrl_c_stops_cleanly_and_writes_nothing(tmp_path: Path, data: Path) -> None:
    import signal
    import time

    slow = tmp_path / "slow_proc.py"
    slow.write_text(
        "import time\n\nclass Slow:\n    def process(self, events):\n        time.sleep(5)\n"
        "        return {'n': len(events)}\n\n    def postprocess(self, acc):\n        return acc\n"
    )
    fileset = write_fileset(tmp_path, data, {"TT": ("nano_tt_v15.root", True)})
    out = tmp_path / "r.pkl"
    scratch = tmp_path / "scratch"  # where the run keeps its partials (TMPDIR)
    scratch.mkdir()
    exe = Path(sys.executable).parent / "condorcof"
    env = {**os.environ, "TMPDIR": str(scratch)}
    proc = subprocess.Popen(
        [
            str(exe),
            "run",
            f"{slow}:Slow",
            str(fileset),
            "-o",
            str(out),
            "--chunksize",
            "10",
            "-j",
            "2",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "interrupted; nothing was written" in stderr
    assert not out.exists() and not out.with_suffix(".json").exists()
    assert list(scratch.iterdir()) == [], "the partials of the interrupted run were left behind"
