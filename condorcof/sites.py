"""Site profiles: a pool's conventions as validated data (``site/*.toml``).

Precedence, lowest first (:func:`resolve_profile`):

1. built-in defaults (the fields of :class:`SiteProfile`),
2. the site profile (``site/NAME.toml``, or a profile file given by path),
3. the user's config file ``$XDG_CONFIG_HOME/condorcof/config.toml`` (default
   ``~/.config/condorcof/config.toml``): first its ``[defaults]`` table, then its
   ``[site.NAME]`` table, both written like a profile (``[site.NAME.resources]``,
   ``[site.NAME.submit]``, ...),
4. command-line options.

A later layer replaces single settings; ``[submit]`` lines merge key by key, and an empty
string removes a line an earlier layer set. Submit keys that condorcof writes itself are
reserved; extra keys must be on an allowlist, so a typo is an error instead of a line HTCondor
silently ignores. Nothing is read at import time.
"""

from __future__ import annotations

import difflib
import os
import re
import tomllib
from dataclasses import dataclass, field, replace
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
        "request_disk", "environment", "periodic_release", "periodic_remove", "+singularityimage",
        "use_x509userproxy", "x509userproxy", "+condorcofrun", "+condorcofnode",
    }
)  # fmt: skip
# where a reserved key's value comes from instead
RESERVED_HINTS = {
    "docker_image": "image", "container_image": "image", "+singularityimage": "image",
    "executable": "python", "request_cpus": "[resources] request_cpus",
    "request_memory": "[resources] request_memory", "request_disk": "[resources] request_disk",
    "use_x509userproxy": "[credentials] x509 = true", "x509userproxy": "[credentials] x509 = true",
    "universe": "universe",
}  # fmt: skip
ALLOWED_SUBMIT_KEYS = frozenset(
    {
        "requirements", "rank", "accounting_group", "accounting_group_user", "+ProjectName",
        "+DESIRED_Sites", "+JobFlavour", "+MaxRuntime", "+AccountingGroup",
        "use_oauth_services", "+UNDESIRED_Sites",
        "+REQUIRED_OS", "max_retries", "periodic_hold", "+WantOS",
        "docker_network_type", "priority", "notification", "+RequiresWholeMachine",
    }
)  # fmt: skip
# job attributes that are ClassAd strings: without the double quotes HTCondor reads an attribute
# reference (UNDEFINED), and the job quietly gets the pool's default
STRING_ATTRIBUTES = frozenset(
    {"+ProjectName", "+DESIRED_Sites", "+UNDESIRED_Sites", "+JobFlavour", "+AccountingGroup",
     "+REQUIRED_OS", "+WantOS"}
)  # fmt: skip
# where each setting goes in a profile file; "" is the top level
SECTIONS: dict[str, tuple[str, ...]] = {
    "": ("description", "universe", "image", "python"),
    "resources": ("request_cpus", "request_memory", "merge_memory", "max_memory", "request_disk"),
    "dagman": ("max_idle", "max_jobs", "scan_interval", "retries"),
    "credentials": ("x509", "min_proxy_hours", "bearer_token"),
    "access_point": ("schedd", "pool", "spool"),
    "data": ("xrootd_redirectors",),
}
# settings that only make sense for one site, so [defaults] of the user config may not set them
SITE_ONLY = ("description", "universe", "image", "python")
PLACEHOLDER = "CHANGE_ME"
_REDIRECTOR = re.compile(r"roots?://[^\s\"',/]+/")
_UNSAFE = re.compile(r"[\s\"']")


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
    # credentials: an x509 proxy goes with every job (use_x509userproxy) and is checked before
    # submission to have min_proxy_hours left; bearer_token: a WLCG token must be present
    x509: bool = False
    min_proxy_hours: int = 24
    bearer_token: bool = False
    # access point: default --schedd/--pool ("" = the local schedd) and spooled submission
    schedd: str = ""
    pool: str = ""
    spool: bool = False
    # XRootD redirectors to retry a root:// input through (CONDORCOF_XROOTD_REDIRECTORS in jobs)
    xrootd_redirectors: tuple[str, ...] = ()
    submit: dict[str, str] = field(default_factory=dict)
    # where the settings came from, lowest precedence first (not a setting)
    sources: tuple[str, ...] = ()

    def with_overrides(self, **overrides: Any) -> SiteProfile:
        """A copy with the options that are not None applied (command line over profile)."""
        given = {k: v for k, v in overrides.items() if v is not None}
        submit = given.pop("submit", {})
        known = settable_keys()
        for key in given:
            if key not in known:
                raise SiteProfileError(f"unknown site setting {key!r}{_nearest(key, known)}")
        return _layer(self, given, _submit_strings(submit), "command line")


def settable_keys() -> list[str]:
    """Every setting a profile may give (outside ``[submit]``)."""
    return [key for keys in SECTIONS.values() for key in keys]


def available_profiles() -> list[str]:
    """Names of the profiles shipped in ``site/``."""
    root = resources.files("condorcof.siteprofiles")
    return sorted(p.name[:-5] for p in root.iterdir() if p.name.endswith(".toml"))


def load_profile(name_or_path: str) -> SiteProfile:
    """Load a shipped profile by name, or a profile file by path (no user config applied)."""
    if name_or_path.endswith(".toml") or "/" in name_or_path:
        path = Path(name_or_path)
        if not path.is_file():
            raise SiteProfileError(f"no site profile file {path}")
        return parse_profile(path.stem, path.read_text(), str(path))
    names = available_profiles()
    if name_or_path not in names:
        near = difflib.get_close_matches(name_or_path, names, n=3) or names
        raise SiteProfileError(f"unknown site {name_or_path!r}; did you mean {', '.join(near)}?")
    text = resources.files("condorcof.siteprofiles").joinpath(f"{name_or_path}.toml").read_text()
    return parse_profile(name_or_path, text, f"site/{name_or_path}.toml")


def parse_profile(name: str, text: str, source: str = "") -> SiteProfile:
    """Validate a profile's TOML text."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise SiteProfileError(f"site profile {name!r} is not valid TOML: {err}") from err
    flat, submit = _read_table(f"site {name!r}", data)
    base = SiteProfile(name=name, sources=("built-in defaults",))
    return _layer(base, flat, submit, source or f"profile {name}")


def user_config_path() -> Path:
    """``$XDG_CONFIG_HOME/condorcof/config.toml`` (``~/.config`` when the variable is unset)."""
    root = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(root) / "condorcof" / "config.toml"


def resolve_profile(
    name_or_path: str, overrides: dict[str, Any] | None = None, config: Path | None = None
) -> SiteProfile:
    """The profile a submission uses: defaults < profile < user config < ``overrides``.

    ``overrides`` are command-line options (None: not given; ``submit`` merges by key).
    ``config`` defaults to :func:`user_config_path`; a missing file is no error. A placeholder
    value (``CHANGE_ME``) left in the result is an error that says where to set it.
    """
    profile = load_profile(name_or_path)
    path = config or user_config_path()
    for label, flat, submit in _user_layers(path, profile.name):
        profile = _layer(profile, flat, submit, label)
    profile = profile.with_overrides(**(overrides or {}))
    missing = unfilled(profile)
    if missing:
        raise SiteProfileError(
            f"site {profile.name!r} needs your value for {', '.join(missing)}: set it in {path} "
            f"under [site.{profile.name}.submit], e.g. {_example(missing[0])}"
        )
    return profile


def unfilled(profile: SiteProfile) -> list[str]:
    """Submit keys still holding the ``CHANGE_ME`` placeholder of a shipped profile."""
    return sorted(k for k, v in profile.submit.items() if PLACEHOLDER in v)


def _example(key: str) -> str:
    value = "'\"MyProject\"'" if key in STRING_ATTRIBUTES else '"my_group"'
    return f'"{key}" = {value}' if key.startswith("+") else f"{key} = {value}"


def _user_layers(path: Path, name: str) -> list[tuple[str, dict[str, Any], dict[str, str]]]:
    """The user config's ``[defaults]`` and ``[site.NAME]`` as validated layers."""
    if not path.is_file():
        return []
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as err:
        raise SiteProfileError(f"user config {path} is not valid TOML: {err}") from err
    for key in data:
        if key not in ("defaults", "site"):
            raise SiteProfileError(
                f"user config {path}: unknown table [{key}]{_nearest(key, ['defaults', 'site'])} "
                "(tables: [defaults] for every site, [site.NAME] for one)"
            )
    sites = data.get("site", {})
    _check_site_names(path, sites)
    layers = []
    defaults = data.get("defaults", {})
    if defaults:
        flat, submit = _read_table(f"user config {path} [defaults]", defaults)
        for key in SITE_ONLY:
            if key in flat:
                raise SiteProfileError(
                    f"user config {path}: {key} differs from site to site; set it under "
                    f"[site.NAME], not [defaults]"
                )
        layers.append((f"{path} [defaults]", flat, submit))
    if name in sites:
        flat, submit = _read_table(f"user config {path} [site.{name}]", sites[name])
        layers.append((f"{path} [site.{name}]", flat, submit))
    return layers


def _check_site_names(path: Path, sites: Any) -> None:
    """A [site.X] table must be a table; X close to a shipped name is taken as a typo."""
    names = available_profiles()
    for site, table in sites.items() if isinstance(sites, dict) else [("", sites)]:
        if not isinstance(table, dict):
            raise SiteProfileError(f"user config {path}: site settings go in [site.NAME] tables")
        near = difflib.get_close_matches(site, names, n=1, cutoff=0.8)
        if site not in names and near:
            raise SiteProfileError(
                f"user config {path}: [site.{site}] matches no site; did you mean {near[0]}?"
            )


def _read_table(where: str, data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
    """A profile-shaped table (top level plus sections) as flat settings and submit lines."""
    flat: dict[str, Any] = {}
    submit: dict[str, str] = {}
    for key, value in data.items():
        if key == "submit":
            submit = _submit_strings(_table(where, key, value))
        elif key in SECTIONS and key:
            for inner, inner_value in _table(where, key, value).items():
                flat[inner] = _check_setting(where, key, inner, inner_value)
        else:
            flat[key] = _check_setting(where, "", key, value)
    return flat, submit


def _table(where: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise SiteProfileError(f"{where}: [{key}] must be a table, not {value!r}")
    return value


def _check_setting(where: str, section: str, key: str, value: Any) -> Any:
    """One setting: known, in its own section, of the right type."""
    home = next((s for s, keys in SECTIONS.items() if key in keys), None)
    if home is None and key in ALLOWED_SUBMIT_KEYS:
        raise SiteProfileError(f"{where}: {key} is a submit line; put it under [submit]")
    if home is None:
        hint = _nearest(key, settable_keys() + [s for s in SECTIONS if s] + ["submit"])
        raise SiteProfileError(f"{where}: unknown setting {key!r}{hint}")
    if home != section:
        place = f"under [{home}]" if home else "at the top, before any [section]"
        raise SiteProfileError(f"{where}: {key} belongs {place}")
    return _typed(where, key, value)


def _typed(where: str, key: str, value: Any) -> Any:
    expected = type(getattr(SiteProfile(), key))
    if expected is tuple:
        if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
            raise SiteProfileError(f"{where}: {key} must be a list of strings, not {value!r}")
        return tuple(value)
    if not isinstance(value, expected) or (expected is int and isinstance(value, bool)):
        raise SiteProfileError(f"{where}: {key} must be a {expected.__name__}, not {value!r}")
    return value


def _submit_strings(submit: dict[str, Any]) -> dict[str, str]:
    def text(value: Any) -> str:
        return ("true" if value else "false") if isinstance(value, bool) else str(value)

    return {k: text(v) for k, v in submit.items()}


def _layer(
    profile: SiteProfile, flat: dict[str, Any], submit: dict[str, str], source: str
) -> SiteProfile:
    """``profile`` with one more layer of settings, validated as a whole."""
    where = f"site {profile.name!r} ({source})"
    _check_submit(where, submit)
    flat = {k: _typed(where, k, v) for k, v in flat.items()}
    merged = {k: v for k, v in {**profile.submit, **submit}.items() if v != ""}
    result = replace(profile, **flat, submit=merged, sources=(*profile.sources, source))
    validate(result)
    return result


def validate(profile: SiteProfile) -> None:
    """Check that the settings make sense together (universe, image form, numbers)."""
    where = f"site {profile.name!r}"
    if profile.universe not in UNIVERSES:
        raise SiteProfileError(
            f"{where}: universe {profile.universe!r} is not one of {UNIVERSES}"
            f"{_nearest(profile.universe, UNIVERSES)}"
        )
    _check_image(where, profile.universe, profile.image)
    if not profile.python.startswith("/") or _UNSAFE.search(profile.python):
        raise SiteProfileError(
            f"{where}: python must be the absolute path of the interpreter inside the image "
            f"(jobs run it with transfer_executable = false), not {profile.python!r}"
        )
    _check_numbers(where, profile)
    for url in profile.xrootd_redirectors:
        if not _REDIRECTOR.fullmatch(url):
            raise SiteProfileError(
                f"{where}: XRootD redirector {url!r} should look like 'root://cmsxrootd.fnal.gov/'"
            )


def _check_image(where: str, universe: str, image: str) -> None:
    if _UNSAFE.search(image):
        raise SiteProfileError(f"{where}: image {image!r} must not contain spaces or quotes")
    bare = re.sub(r"^(docker|oras|osdf)://", "", image)
    if universe == "docker" and (not image or image != bare):
        raise SiteProfileError(
            f"{where}: the docker universe takes a plain image reference like "
            f"'docker.io/coffeateam/coffea-dask-almalinux9:latest', not {image!r}"
        )
    if universe == "container" and not (image != bare or image.startswith("/")):
        raise SiteProfileError(
            f"{where}: the container universe reads a plain name as an Apptainer sandbox path, "
            f"which never matches; write 'docker://{image}', an osdf:// .sif or an absolute path"
        )
    if universe == "vanilla" and image and not (image.startswith(("/", "docker://"))):
        raise SiteProfileError(
            f"{where}: +SingularityImage needs an unpacked image path, e.g. "
            f"'/cvmfs/unpacked.cern.ch/registry.hub.docker.com/{image}', not {image!r}"
        )


def _check_numbers(where: str, profile: SiteProfile) -> None:
    for key in ("request_cpus", "request_memory", "merge_memory", "max_memory", "max_idle"):
        if getattr(profile, key) < 1:
            raise SiteProfileError(f"{where}: {key} must be at least 1")
    for key in ("max_jobs", "scan_interval", "retries", "min_proxy_hours"):
        if getattr(profile, key) < 0:
            raise SiteProfileError(f"{where}: {key} must not be negative")
    if profile.max_memory < profile.request_memory:
        raise SiteProfileError(
            f"{where}: request_memory {profile.request_memory} MB is above max_memory "
            f"{profile.max_memory} MB, the cap after memory holds; raise max_memory too"
        )
    if not re.fullmatch(r"\d+(\.\d+)?\s*([KMGT]i?B?)?", profile.request_disk, re.I):
        raise SiteProfileError(
            f"{where}: request_disk {profile.request_disk!r} should look like '2GB' or '500MB'"
        )


def _check_submit(where: str, submit: dict[str, str]) -> None:
    for key, value in submit.items():
        lower = key.lower()
        if lower.startswith("my."):
            raise SiteProfileError(f"{where}: write submit key {key!r} as '+{key[3:]}'")
        if lower in RESERVED_KEYS:
            hint = RESERVED_HINTS.get(lower)
            raise SiteProfileError(
                f"{where}: submit key {key!r} is set by condorcof and cannot be overridden"
                + (f"; use the setting {hint}" if hint else "")
            )
        if key not in ALLOWED_SUBMIT_KEYS:
            raise SiteProfileError(
                f"{where}: submit key {key!r} is not allowed{_nearest(key, ALLOWED_SUBMIT_KEYS)}"
            )
        if key in STRING_ATTRIBUTES and value and not re.fullmatch(r'"[^"]*"', value):
            quoted = "'\"" + value.strip('"') + "\"'"
            raise SiteProfileError(
                f"{where}: {key} is a ClassAd string, so its value needs double quotes; "
                f'in TOML: "{key}" = {quoted}'
            )


def _nearest(word: str, choices: Any) -> str:
    near = difflib.get_close_matches(word, sorted(choices), n=3)
    return f"; did you mean {', '.join(near)}?" if near else ""


def describe_profile(profile: SiteProfile) -> str:
    """Human-readable summary of a profile, for ``condorcof sites NAME``."""
    p = profile
    lines = [f"{p.name}: {p.description or '(no description)'}", ""]
    lines.append(f"  jobs         {_how_jobs_run(p)}")
    lines.append(
        f"  resources    {p.request_cpus} CPU, {p.request_memory} MB (doubled after a memory "
        f"hold, up to {p.max_memory} MB), disk {p.request_disk}; merges {p.merge_memory} MB"
    )
    lines.append(
        f"  dagman       at most {p.max_idle} idle jobs, "
        f"{p.max_jobs or 'no limit on'} submitted jobs, {p.retries} retries, "
        f"log scan every {p.scan_interval} s"
    )
    where = p.schedd or "the local schedd"
    lines.append(
        f"  submit to    {where}{f' (pool {p.pool})' if p.pool else ''}"
        f"{', spooled: fetch the outputs back when it ends' if p.spool else ''}"
    )
    lines.append(f"  credentials  {_credentials_text(p)}")
    if p.xrootd_redirectors:
        lines.append(f"  xrootd       {', '.join(p.xrootd_redirectors)}")
    if p.submit:
        lines.append("  extra submit lines")
        lines += [f"    {k} = {v}" for k, v in sorted(p.submit.items())]
    for key in unfilled(p):
        lines.append(
            f"  NEEDS        your {key}: in {user_config_path()}, "
            f"[site.{p.name}.submit] {_example(key)}"
        )
    if p.sources:
        lines.append(f"  settings     {' < '.join(p.sources)}")
    return "\n".join(lines) + "\n"


def _how_jobs_run(p: SiteProfile) -> str:
    run = f"{p.python} bundle.zip worker ..."
    if p.universe == "docker":
        return f"docker universe: the execute node's Docker runs {run} in {p.image}"
    if p.universe == "container":
        return f"container universe (Apptainer or Docker on the node): {run} in {p.image}"
    if p.image:
        return f"vanilla universe in Apptainer/Singularity (+SingularityImage): {run} in {p.image}"
    return f"vanilla universe on the execute node itself: {run} (that path must exist there)"


def _credentials_text(p: SiteProfile) -> str:
    parts = []
    if p.x509:
        parts.append(
            f"x509 proxy with every job (use_x509userproxy), at least {p.min_proxy_hours} h "
            "left at submission"
        )
    if p.bearer_token:
        parts.append("WLCG bearer token checked before submission")
    return "; ".join(parts) or "none"
