"""A real XRootD server on loopback (Debian's xrootd-server, installed by .ci/pool-up)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def xrootd_server(export: Path, workdir: Path) -> Iterator[str]:
    """Serve ``export`` read-only on a free loopback port; yields ``root://127.0.0.1:PORT/``."""
    if shutil.which("xrootd") is None:
        pytest.fail("xrootd is not installed: .ci/pool-up installs Debian's xrootd-server")
    if os.geteuid() == 0:
        pytest.fail(
            "xrootd refuses to run as root: run the tests as an unprivileged user (.ci/test)"
        )
    port = free_port()
    config = workdir / "xrootd.cfg"
    config.write_text(
        f"xrd.port {port}\nall.export /\noss.localroot {export}\n"
    )
    log = workdir / f"t{port}" / "xrootd.log"  # xrootd puts its log under the instance name
    proc = subprocess.Popen(
        ["xrootd", "-c", str(config), "-l", str(log), "-n", f"t{port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
        cwd=workdir,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(
                        f"xrootd did not start: {log.read_text() if log.exists() else 'no log'}"
                    )
                time.sleep(0.2)
        yield f"root://127.0.0.1:{port}/"
    finally:
        proc.terminate()
        proc.wait(timeout=10)
