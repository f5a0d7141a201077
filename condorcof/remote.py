"""Opening input files, local or by XRootD URL, with redirector fallback.

When a ``root://`` URL cannot be opened, the same path is tried through each redirector in
turn (a site profile lists them); every failed attempt is recorded so the job's manifest can
say where the data really came from.
"""

from __future__ import annotations

import os
from typing import Any

from condorcof.fileset import is_url

# Fail over in seconds, not minutes: XRootD's client retries a dead host for up to 2 minutes.
_XRD_DEFAULTS = {
    "XRD_CONNECTIONRETRY": "1",
    "XRD_CONNECTIONWINDOW": "5",
    "XRD_REQUESTTIMEOUT": "60",
}


def with_redirector(url: str, redirector: str) -> str:
    """The same file through another redirector.

    >>> with_redirector("root://eos.cern.ch//store/a.root", "root://cmsxrootd.fnal.gov/")
    'root://cmsxrootd.fnal.gov//store/a.root'
    >>> with_redirector("root://a:1094//x.root", "root://b:2094")
    'root://b:2094//x.root'
    """
    scheme, _, rest = url.partition("://")
    path = rest[rest.index("/") :] if "/" in rest else "/"
    host = redirector.partition("://")[2].rstrip("/")
    return f"{scheme}://{host}{path}"


def candidates(path: str, redirectors: tuple[str, ...] | list[str]) -> list[str]:
    """The URL itself, then the same path through each redirector (no duplicates)."""
    if not is_url(path) or not path.startswith(("root://", "xroot://")):
        return [path]
    urls = [path] + [with_redirector(path, r) for r in redirectors]
    return list(dict.fromkeys(urls))


def redirectors_from_env() -> tuple[str, ...]:
    """Redirectors a site profile passed to the job (``CONDORCOF_XROOTD_REDIRECTORS``)."""
    value = os.environ.get("CONDORCOF_XROOTD_REDIRECTORS", "")
    return tuple(r for r in value.split(",") if r)


def open_file(
    path: str, redirectors: tuple[str, ...] = (), attempts: list[dict[str, str]] | None = None
) -> Any:
    """``uproot.open`` with fallback; failed tries are appended to ``attempts``."""
    import uproot

    urls = candidates(path, tuple(redirectors) or redirectors_from_env())
    if len(urls) > 1 or is_url(path):
        for key, value in _XRD_DEFAULTS.items():
            os.environ.setdefault(key, value)
    errors = []
    for url in urls:
        try:
            handle = uproot.open(url)
            if attempts is not None and url != path:
                attempts.append({"url": url, "result": "opened"})
            return handle
        except OSError as err:
            errors.append(f"{url}: {err}")
            if attempts is not None:
                attempts.append({"url": url, "result": f"failed: {err}"})
            if len(urls) == 1:
                raise
    raise OSError(f"{path}: no location could be opened ({'; '.join(errors)})")
