"""Site profiles: a pool's conventions as validated data (``site/*.toml``).

Precedence, lowest first: built-in defaults < the site profile < command-line options.
Submit keys that condorcof writes itself are reserved; extra keys must be on an allowlist,
so a typo is an error instead of a line HTCondor silently ignores.
"""

from __future__ import annotations

import difflib
import tomllib
from dataclasses import dataclass, field, fields, replace
from importlib import resources
from pathlib import Path
from typing import Any

from condorcof.errors import SiteProfileError

UNIVERSES = ("docker", "container", "vanilla")
RESERVED_KEYS = frozenset(
    {
        "universe", "executable", "arguments", "transfer_executable", "transfer_input_files",
        "transfer_output_files", "should_transfer_files", "when_to_transfer_output", "output",
        "error", "log", "queue", "docker_image", "container_image", "request_cpus", "request_memory",
        "request_disk", "environment", "periodic_release", "periodic_remove",
    }
)  # fmt: skip
ALLOWED_SUBMIT_KEYS = frozenset(
    {
        "requirements", "rank", "accounting_group", "accounting_group_user", "+ProjectName",
        "+DESIRED_Sites", "+SingularityImage", "+JobFlavour", "+MaxRuntime", "+AccountingGroup",
        "use_x509userproxy", "x509userproxy", "use_oauth_services", "+UNDESIRED_Sites",
        "+REQUIRED_OS", "max_retries", "periodic_hold", "+WantOS",
        "docker_network_type", "priority", "notification", "+RequiresWholeMachine",
    }
)  # fmt: skip


@dataclass(frozen=True)
class SiteProfile:
    """Where and how node jobs run."""

    name: str = "local"
    description: str = ""
    universe: str = "docker"
    image: str = "condorcof/worker:latest"
    python: str = "/opt/venv/bin/python"
    request_cpus: int = 1
    request_memory: int = 2048
    merge_memory: int = 2048
    max_memory: int = 8192
    request_disk: str = "2GB"
    max_idle: int = 1000
    max_jobs: int = 0
    scan_interval: int = 5
    retries: int = 2
    submit: dict[str, str] = field(default_factory=dict)

    def with_overrides(self, **overrides: Any) -> SiteProfile:
        """A copy with the options that are not None applied (command line over profile)."""
        known = {f.name for f in fields(self)}
        unknown = set(overrides) - known
        if unknown:
            raise SiteProfileError(f"unknown site settings {sorted(unknown)}")
        return replace(self, **{k: v for k, v in overrides.items() if v is not None})


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``site/``."""
    root = resources.files("condorcof.siteprofiles")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str) -> SiteProfile:
    """Load a shipped profile by name, or a profile file by path."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise SiteProfileError(f"no site profile file {path}")
        return parse_profile(path.stem, path.read_text())
    names = available_profiles()
    if name_or_path not in names:
        near = difflib.get_close_matches(name_or_path, names, n=3) or names
        raise SiteProfileError(f"unknown site {name_or_path!r}; did you mean {', '.join(near)}?")
    text = resources.files("condorcof.siteprofiles").joinpath(f"{name_or_path}.toml").read_text()
    return parse_profile(name_or_path, text)


def parse_profile(name: str, text: str) -> SiteProfile:
    """Validate a profile's TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SiteProfileError(f"site profile {name!r} is not valid TOML: {err}") from err
    flat: dict[str, Any] = {}
    for section in ("resources", "dagman"):
        flat.update(data.pop(section, {}))
    submit = data.pop("submit", {})
    flat.update(data)
    _check_keys(name, flat)
    _check_submit(name, submit)
    profile = SiteProfile(name=name, submit={k: str(v) for k, v in submit.items()}, **flat)
    if profile.universe not in UNIVERSES:
        raise SiteProfileError(
            f"site {name!r}: universe {profile.universe!r} is not one of {UNIVERSES}"
        )
    return profile


def _check_keys(name: str, flat: dict[str, Any]) -> None:
    known = {f.name for f in fields(SiteProfile)} - {"name", "submit"}
    for key, value in flat.items():
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=3)
            raise SiteProfileError(
                f"site {name!r}: unknown setting {key!r}; did you mean {', '.join(near) or '?'}"
            )
        expected = type(getattr(SiteProfile(), key))
        if not isinstance(value, expected):
            raise SiteProfileError(
                f"site {name!r}: {key} must be a {expected.__name__}, not {value!r}"
            )


def _check_submit(name: str, submit: dict[str, Any]) -> None:
    for key in submit:
        if key.lower() in RESERVED_KEYS:
            raise SiteProfileError(
                f"site {name!r}: submit key {key!r} is set by condorcof and cannot be overridden"
            )
        if key not in ALLOWED_SUBMIT_KEYS:
            near = difflib.get_close_matches(key, sorted(ALLOWED_SUBMIT_KEYS), n=3)
            raise SiteProfileError(
                f"site {name!r}: submit key {key!r} is not allowed; did you mean {', '.join(near) or '?'}"
            )
