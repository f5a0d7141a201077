"""Site profiles: the shipped ones, their submit files, validation, and the user config layer."""

from __future__ import annotations

from pathlib import Path

import pytest

from condorcof.dag import render_submit_files
from condorcof.errors import SiteProfileError
from condorcof.sites import (
    available_profiles,
    describe_profile,
    load_profile,
    parse_profile,
    resolve_profile,
    user_config_path,
)

GOLDEN = Path(__file__).parent / "golden"
GRID = ["cms-connect", "lxplus", "ospool", "t2-docker"]


def submit_files(name: str) -> dict[str, dict[str, str]]:
    """Each submit file of a shipped profile as HTCondor itself parses it."""
    htcondor2 = pytest.importorskip("htcondor2")
    files = render_submit_files(load_profile(name), "r1", [])
    return {f: dict(htcondor2.Submit(text)) for f, text in files.items()}


def test_every_profile_is_shipped_described_and_valid() -> None:
    assert available_profiles() == ["cms-connect", "local", "lxplus", "ospool", "t2-docker"]
    for name in available_profiles():
        profile = load_profile(name)
        text = describe_profile(profile)
        assert profile.description and text.startswith(f"{name}: {profile.description}")
        assert profile.universe in text and profile.python in text
        assert profile.sources == ("built-in defaults", f"site/{name}.toml")


@pytest.mark.parametrize("filename", ["chunk.sub", "merge.sub"])
@pytest.mark.parametrize("name", GRID)
def test_golden_submit_files(name: str, filename: str) -> None:
    """Reviewed by hand; a change to the generated text must be a deliberate one."""
    text = render_submit_files(load_profile(name), "r1", [])[filename]
    assert text == (GOLDEN / f"{name}.{filename}").read_text()


@pytest.mark.parametrize("name", available_profiles())
def test_jobs_run_the_images_python_in_the_universes_own_way(name: str) -> None:
    profile = load_profile(name)
    image_key = {"docker": "docker_image", "container": "container_image"}.get(
        profile.universe, "MY.SingularityImage"
    )
    for filename, sub in submit_files(name).items():
        assert sub["universe"] == profile.universe
        assert sub["executable"] == profile.python and profile.python.startswith("/")
        assert sub["transfer_executable"] == "false"  # the interpreter lives in the image
        command = {"chunk.sub": "worker", "merge.sub": "merge"}[filename]
        assert sub["arguments"].startswith(f'"bundle.zip {command} ')
        images = {k for k in ("docker_image", "container_image", "MY.SingularityImage") if k in sub}
        assert images == {image_key}, filename


def test_cms_connect_is_vanilla_with_a_cvmfs_image_a_proxy_and_sites() -> None:
    for sub in submit_files("cms-connect").values():
        assert sub["universe"] == "vanilla"
        image = sub["MY.SingularityImage"]
        assert image.startswith('"/cvmfs/unpacked.cern.ch/') and image.endswith('"')
        assert sub["use_x509userproxy"] == "true"
        assert (
            sub["MY.DESIRED_Sites"].startswith('"T') and "T2_US_Nebraska" in sub["MY.DESIRED_Sites"]
        )
    chunk = submit_files("cms-connect")["chunk.sub"]
    assert "CONDORCOF_XROOTD_REDIRECTORS=root://cmsxrootd.fnal.gov/," in chunk["environment"]


def test_ospool_is_the_container_universe_with_a_project() -> None:
    for sub in submit_files("ospool").values():
        assert sub["universe"] == "container"
        assert sub["container_image"].startswith("docker://")
        assert sub["MY.ProjectName"].startswith('"')
        assert "use_x509userproxy" not in sub
    assert "+ProjectName" in describe_profile(load_profile("ospool")).split("NEEDS")[1]


def test_lxplus_has_a_job_flavour_spooling_and_a_proxy() -> None:
    profile = load_profile("lxplus")
    assert profile.spool and profile.x509
    for sub in submit_files("lxplus").values():
        assert sub["MY.JobFlavour"] == '"longlunch"'
        assert sub["use_x509userproxy"] == "true"
        assert sub["MY.SingularityImage"].startswith('"/cvmfs/')
    assert "spooled" in describe_profile(profile)


def test_t2_docker_pulls_a_public_image_for_an_accounting_group() -> None:
    for sub in submit_files("t2-docker").values():
        assert sub["universe"] == "docker"
        assert sub["docker_image"].startswith("docker.io/")
        assert "HasDocker" in sub["requirements"]
        assert "accounting_group" in sub


def test_local_profile_writes_no_new_lines() -> None:
    for sub in submit_files("local").values():
        assert not {"use_x509userproxy", "requirements"} & set(sub)
        assert sub["environment"] == '"PYTHONDONTWRITEBYTECODE=1 CONDORCOF_NODE=$(JOB)"'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('universe = "container"\nimage = "coffea:1"\n', "write 'docker://coffea:1'"),
        ('universe = "docker"\nimage = "docker://coffea:1"\n', "plain image reference"),
        (
            'universe = "vanilla"\nimage = "coffeateam/c:1"\n',
            "/cvmfs/unpacked.cern.ch/.*coffeateam/c:1",
        ),
        ('universe = "vanila"\n', "did you mean vanilla"),
        ('python = "python3"\n', "absolute path of the interpreter"),
        ('[submit]\n"+SingularityImage" = \'"/a"\'\n', "set by condorcof.*setting image"),
        ("[submit]\nuse_x509userproxy = true\n", r"set by condorcof.*x509 = true"),
        ('[submit]\n"MY.JobFlavour" = \'"espresso"\'\n', "as '\\+JobFlavour'"),
        ('[submit]\n"+JobFlavour" = "espresso"\n', "needs double quotes.*'\"espresso\"'"),
        ("request_memory = 5\n", r"request_memory belongs under \[resources\]"),
        ("[dagman]\nx509 = true\n", r"x509 belongs under \[credentials\]"),
        ("[resorces]\nrequest_cpus = 2\n", "did you mean resources"),
        ("[resources]\nrequest_cpus = true\n", "request_cpus must be a int"),
        ('[credentials]\nx509 = "yes"\n', "x509 must be a bool"),
        ('[data]\nxrootd_redirectors = "root://a/"\n', "must be a list of strings"),
        ('[data]\nxrootd_redirectors = ["cmsxrootd.fnal.gov"]\n', "should look like 'root://"),
        ("[resources]\nrequest_memory = 9000\nmax_memory = 4000\n", "above max_memory"),
        ('[resources]\nrequest_disk = "lots"\n', "should look like '2GB'"),
        ("[resources]\nrequest_cpus = 0\n", "request_cpus must be at least 1"),
        ("[submit]\nrequirments = 1\n", "did you mean requirements"),
        ('notification = "Never"\n', r"submit line; put it under \[submit\]"),
    ],
)
def test_profiles_are_validated_strictly(text: str, message: str) -> None:
    with pytest.raises(SiteProfileError, match=message):
        parse_profile("x", text)


def test_command_line_overrides_are_validated_too() -> None:
    profile = load_profile("ospool")
    assert profile.with_overrides(image="docker://x/y:1", request_memory=None).image == (
        "docker://x/y:1"
    )
    with pytest.raises(SiteProfileError, match="write 'docker://x/y:1'"):
        profile.with_overrides(image="x/y:1")
    with pytest.raises(SiteProfileError, match="unknown site setting 'memroy'"):
        profile.with_overrides(memroy=3)
    with pytest.raises(SiteProfileError, match="set by condorcof"):
        profile.with_overrides(submit={"executable": "/bin/sh"})


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "condorcof" / "config.toml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


CONFIG = """
[defaults.submit]
notification = "Never"

[defaults.resources]
request_memory = 3000
merge_memory = 3000

[defaults.dagman]
retries = 5

[site.ospool]
description = "my OSPool"

[site.ospool.resources]
request_memory = 4000

[site.ospool.submit]
"+ProjectName" = '"MyProject"'
requirements = "(TARGET.HAS_CVMFS_unpacked_cern_ch =?= true)"

[site.lxplus.resources]
request_memory = 1000
"""


def test_user_config_sits_between_the_profile_and_the_command_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, CONFIG)
    profile = resolve_profile("ospool", {"retries": 1, "image": None}, config)
    assert profile.universe == "container"  # the site profile over the built-in docker
    assert profile.max_memory == 8192  # the profile's, untouched by the user
    assert profile.merge_memory == 3000  # [defaults] over the profile
    assert profile.request_memory == 4000  # [site.ospool] over [defaults]
    assert profile.retries == 1  # the command line over everything
    assert profile.image == load_profile("ospool").image  # None: option not given
    assert profile.description == "my OSPool"
    assert profile.submit == {
        "+ProjectName": '"MyProject"',
        "notification": "Never",
        "requirements": "(TARGET.HAS_CVMFS_unpacked_cern_ch =?= true)",
    }
    assert profile.sources == (
        "built-in defaults",
        "site/ospool.toml",
        f"{config} [defaults]",
        f"{config} [site.ospool]",
        "command line",
    )
    assert "command line" in describe_profile(profile) and "NEEDS" not in describe_profile(profile)
    chunk = render_submit_files(profile, "r1", [])["chunk.sub"]
    assert (
        '+ProjectName            = "MyProject"' in chunk
        and "notification            = Never" in chunk
    )
    # another site gets [defaults] and its own table only
    lxplus = resolve_profile("lxplus", {}, config)
    assert (lxplus.request_memory, lxplus.retries, lxplus.submit["+JobFlavour"]) == (
        1000, 5, '"longlunch"'
    )  # fmt: skip


def test_user_config_is_found_through_xdg_and_may_be_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path))
    assert user_config_path() == tmp_path / "condorcof" / "config.toml"
    assert resolve_profile("local", {}) == load_profile("local").with_overrides()
    write_config(tmp_path, "[site.local.resources]\nrequest_memory = 2000\n")
    assert resolve_profile("local", {}).request_memory == 2000
    assert load_profile("local").request_memory == 1024  # load_profile alone ignores it


def test_an_empty_string_removes_a_submit_line(tmp_path: Path) -> None:
    config = write_config(tmp_path, "[site.cms-connect.submit]\n\"+DESIRED_Sites\" = ''\n")
    profile = resolve_profile("cms-connect", {}, config)
    assert "+DESIRED_Sites" not in profile.submit and "requirements" in profile.submit


def test_a_profile_file_takes_the_user_table_of_its_name(tmp_path: Path) -> None:
    path = tmp_path / "mysite.toml"
    path.write_text('description = "mine"\n[resources]\nrequest_memory = 1500\n')
    config = write_config(tmp_path, "[site.mysite.resources]\nrequest_memory = 1800\n")
    assert resolve_profile(str(path), {}, config).request_memory == 1800


def test_placeholders_must_be_filled_before_submission(tmp_path: Path) -> None:
    config = tmp_path / "none.toml"
    with pytest.raises(SiteProfileError, match=r"\+ProjectName.*\[site.ospool.submit\]"):
        resolve_profile("ospool", {}, config)
    with pytest.raises(SiteProfileError, match="accounting_group.*site.t2-docker.submit"):
        resolve_profile("t2-docker", {}, config)
    filled = resolve_profile("t2-docker", {"submit": {"accounting_group": "group_cms"}}, config)
    assert filled.submit["accounting_group"] == "group_cms"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[sites.ospool]\nretries = 1\n", r"unknown table \[sites\].*did you mean site"),
        ("[site.osppol]\nretries = 1\n", "did you mean ospool"),
        (
            '[defaults]\nuniverse = "vanilla"\n',
            r"universe differs from site to site.*\[site.NAME\]",
        ),
        (
            "[defaults.resources]\nrequest_memroy = 1\n",
            r"\[defaults\]: unknown setting 'request_memroy'",
        ),
        ("[site.ospool.submit]\nexecutable = 'x'\n", r"\(.*\[site.ospool\]\): submit key"),
        ("[site.ospool\n", "not valid TOML"),
        ("site = 3\n", r"\[site.NAME\] tables"),
    ],
)
def test_user_config_is_validated_like_a_profile(tmp_path: Path, text: str, message: str) -> None:
    config = write_config(tmp_path, text)
    with pytest.raises(SiteProfileError, match=message):
        resolve_profile("ospool", {"submit": {"+ProjectName": '"P"'}}, config)
