"""The command line through click's CliRunner: sites, dry-run submissions, credential checks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from condorcof.cli import cli

REPO = Path(__file__).resolve().parents[1]
PROCESSOR = f"{REPO / 'examples' / 'dimuon_vbf.py'}:DimuonVBF"


def invoke(*args: str, env: dict[str, str] | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env=env)
    return result.exit_code, result.output


def test_sites_lists_and_describes_profiles() -> None:
    code, text = invoke("sites")
    assert code == 0 and all(
        name in text for name in ("local", "cms-connect", "ospool", "lxplus", "t2-docker")
    )
    code, text = invoke("sites", "ospool")
    assert code == 0 and "container universe" in text.lower()
    code, text = invoke("sites", "cmsconnect")
    assert code != 0 and "cms-connect" in text


@pytest.mark.parametrize("site", ["local", "cms-connect", "lxplus"])
def test_dry_run_writes_a_run_directory_for_each_site(
    tmp_path: Path, data: Path, site: str
) -> None:
    fileset = tmp_path / "fs.json"
    fileset.write_text(json.dumps({"DY": [str(data / "nano_dy.root")]}))
    code, text = invoke(
        "submit",
        PROCESSOR,
        str(fileset),
        "--site",
        site,
        "--workdir",
        str(tmp_path),
        "--name",
        "r",
        "--dry-run",
    )
    assert code == 0, text
    chunk = (tmp_path / "r" / "chunk.sub").read_text()
    assert "bundle.zip worker" in chunk and "nothing submitted" in text
    if site == "lxplus":
        assert json.loads((tmp_path / "r" / "run.json").read_text())["spool"] is True
        assert "CONFIG dagman.config" not in (tmp_path / "r" / "workflow.dag").read_text()


def test_submit_refuses_a_missing_proxy_before_writing_anything(tmp_path: Path, data: Path) -> None:
    fileset = tmp_path / "fs.json"
    fileset.write_text(json.dumps({"DY": [str(data / "nano_dy.root")]}))
    code, text = invoke(
        "submit",
        PROCESSOR,
        str(fileset),
        "--site",
        "cms-connect",
        "--workdir",
        str(tmp_path),
        "--name",
        "r",
        env={"X509_USER_PROXY": str(tmp_path / "x509up_missing")},
    )
    assert code != 0 and "x509up_missing" in text
    assert not (tmp_path / "r").exists()
