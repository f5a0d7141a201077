"""root:// inputs through a real XRootD server on loopback, with a first redirector that is down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from independent import assert_matches, expected
from xrootd_server import free_port, xrootd_server

import condorcof
from condorcof.cli import cli
from condorcof.remote import open_file

pytestmark = pytest.mark.xrootd
REPO = Path(__file__).resolve().parents[1]
PROCESSOR = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"


def test_open_falls_back_to_the_next_redirector(tmp_path: Path, data: Path) -> None:
    down = f"root://127.0.0.1:{free_port()}/"
    with xrootd_server(data, tmp_path) as up:
        attempts: list[dict[str, str]] = []
        with open_file(down + "/nano_dy.root", (up,), attempts) as handle:
            assert handle["Events"].num_entries == 40
    assert [a["url"] for a in attempts] == [down + "/nano_dy.root", up + "/nano_dy.root"]
    assert attempts[0]["result"].startswith("failed") and attempts[1]["result"] == "opened"


def test_run_reads_root_urls_through_a_fallback_redirector(tmp_path: Path, data: Path) -> None:
    down = f"root://127.0.0.1:{free_port()}/"
    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps(
            {"DY": {"files": {down + "/nano_dy.root": "Events"}, "metadata": {"isMC": True}}}
        )
    )
    out = tmp_path / "r.pkl"
    with xrootd_server(data, tmp_path) as up:
        result = CliRunner().invoke(
            cli,
            [
                "run",
                "--quiet",
                PROCESSOR,
                str(fileset),
                "-o",
                str(out),
                "--chunksize",
                "15",
                "--redirector",
                up,
            ],
        )
    assert result.exit_code == 0, result.output
    assert_matches(condorcof.load(str(out))["DY"], expected(data / "nano_dy.root", True))


@pytest.mark.condor
def test_pool_job_reads_root_urls_through_a_fallback_redirector(tmp_path: Path, data: Path) -> None:
    from pool import remove_leftovers, require_pool, submit, wait_for

    require_pool()
    down = f"root://127.0.0.1:{free_port()}/"
    local = (REPO / "site" / "local.toml").read_text()
    fileset = tmp_path / "fs.json"
    fileset.write_text(
        json.dumps(
            {"DY": {"files": {down + "/nano_dy.root": "Events"}, "metadata": {"isMC": True}}}
        )
    )
    with xrootd_server(data, tmp_path) as up:
        profile = (
            tmp_path / "xrootd-site.toml"
        )  # the jobs share the host's network to reach loopback
        profile.write_text(
            local.replace("[submit]", f'[data]\nxrootd_redirectors = ["{up}"]\n\n[submit]')
            + 'docker_network_type = "host"\n'
        )
        try:
            info = submit(
                tmp_path / "runs",
                "xrd",
                fileset,
                "--site",
                str(profile),
                "--chunksize",
                "20",
                "--redirector",
                up,
            )
            status = wait_for(info)
        finally:
            remove_leftovers()
    assert status.state == "done", status.to_json()
    assert_matches(condorcof.load(str(info.result))["DY"], expected(data / "nano_dy.root", True))
    manifest = json.loads((info.path / "outputs" / "manifest_job_0000.json").read_text())
    tried = [a["url"] for a in manifest["xrootd_attempts"]]
    assert tried == [down + "/nano_dy.root", up + "/nano_dy.root"], manifest["xrootd_attempts"]
