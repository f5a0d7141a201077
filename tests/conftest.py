"""Shared fixtures: the real ROOT files in ``../shared/data`` and small helpers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def data_dir() -> Path:
    """The shared test data: ``$CONDORCOF_DATA`` or ``../shared/data`` beside the checkout."""
    env = os.environ.get("CONDORCOF_DATA")
    return Path(env) if env else REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def data() -> Path:
    path = data_dir()
    if not (path / "nano_dy.root").exists():
        pytest.fail(f"test data not found in {path}; set CONDORCOF_DATA")
    return path


@pytest.fixture(autouse=True)
def _isolated_cache(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Keep the preprocess cache of tests away from the user's own."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("cache")))
