"""Credentials checked before submission, on proxy-shaped certificates and tokens made here."""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from condorcof import credentials
from condorcof.credentials import (
    certificate_validity,
    check_bearer_token,
    check_credentials,
    check_proxy,
    find_bearer_token,
    proxy_path,
)
from condorcof.errors import CredentialError
from condorcof.sites import load_profile

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
HOUR = 3600
HAS_OPENSSL = shutil.which("openssl") is not None


def certificate(
    not_before: datetime, not_after: datetime, name: str = "proxy"
) -> tuple[bytes, bytes]:
    """A self-signed certificate and its key, both PEM."""
    from cryptography import x509  # a test dependency: [options.extras_require] test
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert.public_bytes(serialization.Encoding.PEM), key_pem


def make_proxy(path: Path, hours_left: float, chain_hours_left: float = 24 * 365) -> Path:
    """A proxy-shaped file: the proxy certificate, its key, then the user's certificate."""
    proxy, key = certificate(NOW - timedelta(hours=1), NOW + timedelta(hours=hours_left))
    user, _ = certificate(NOW - timedelta(days=30), NOW + timedelta(hours=chain_hours_left), "me")
    path.write_bytes(proxy + key + user)
    path.chmod(0o600)
    return path


def jwt(claims: dict) -> str:
    def part(data: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'ES256', 'typ': 'JWT'})}.{part(claims)}.c2lnbmF0dXJl"


@pytest.fixture(autouse=True)
def _no_credentials_from_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("X509_USER_PROXY", "BEARER_TOKEN", "BEARER_TOKEN_FILE", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)


def test_proxy_is_looked_for_where_condor_submit_looks() -> None:
    assert proxy_path({}, uid=1234) == Path("/tmp/x509up_u1234")
    assert proxy_path({"X509_USER_PROXY": "/p/x"}, uid=1234) == Path("/p/x")


def test_a_long_enough_proxy_is_fine(tmp_path: Path) -> None:
    status = check_proxy(24 * HOUR, path=make_proxy(tmp_path / "x509up", 48), now=NOW)
    assert status.ok and status.warning is None
    assert status.seconds_left == 48 * HOUR and status.not_after == NOW + timedelta(hours=48)


def test_a_short_proxy_gives_a_warning_with_the_numbers(tmp_path: Path) -> None:
    path = make_proxy(tmp_path / "x509up", 2.5)
    status = check_proxy(48 * HOUR, path=path, now=NOW)
    assert not status.ok and status.seconds_left == int(2.5 * HOUR)
    assert "has 2 h 30 min left (until 2030-06-01 14:30 UTC)" in status.warning
    assert (
        "less than the 2 d 0 h asked for" in status.warning and "voms-proxy-init" in status.warning
    )


def test_the_chain_bounds_the_proxys_life(tmp_path: Path) -> None:
    path = make_proxy(tmp_path / "x509up", 48, chain_hours_left=5)
    assert check_proxy(HOUR, path=path, now=NOW).seconds_left == 5 * HOUR


def test_an_expired_proxy_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "x509up"
    cert, key = certificate(NOW - timedelta(days=2), NOW - timedelta(hours=3))
    path.write_bytes(cert + key)
    with pytest.raises(CredentialError, match=r"expired 3 h 0 min ago \(2030-06-01 09:00 UTC\)"):
        check_proxy(0, path=path, now=NOW)


def test_a_missing_proxy_is_an_error_naming_where_it_looked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "none"))
    with pytest.raises(
        CredentialError, match="X509_USER_PROXY names .*/none, which does not exist"
    ):
        check_proxy(0)
    with pytest.raises(CredentialError, match="no x509 proxy at .*/other; create one with"):
        check_proxy(0, path=tmp_path / "other")
    (tmp_path / "junk").write_text("not a certificate")
    with pytest.raises(CredentialError, match="holds no PEM certificate"):
        check_proxy(0, path=tmp_path / "junk")


def test_the_proxy_is_found_through_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("X509_USER_PROXY", str(make_proxy(tmp_path / "p", 30)))
    assert check_proxy(HOUR, now=NOW).path == tmp_path / "p"


def test_a_proxy_others_can_read_is_flagged_and_nothing_secret_is_said(tmp_path: Path) -> None:
    path = make_proxy(tmp_path / "x509up", 48)
    path.chmod(0o644)
    status = check_proxy(HOUR, path=path, now=NOW)
    assert "can be read by other users (mode 644): chmod 600" in status.warning
    secret = path.read_text().split("-----")[2].split()[0]  # the certificate's own bytes
    for text in (status.warning, repr(status)):
        assert "PRIVATE KEY" not in text and secret not in text


def test_both_backends_read_the_same_lifetime(tmp_path: Path) -> None:
    data = make_proxy(tmp_path / "x509up", 7, chain_hours_left=9).read_bytes()
    window = certificate_validity(data, "cryptography")
    assert certificate_validity(data, "openssl") == window
    assert window == (NOW - timedelta(hours=1), NOW + timedelta(hours=7))


def test_certificates_made_by_openssl_req(tmp_path: Path) -> None:
    """The command-line way of making a test proxy, read by the openssl backend."""

    def req(name: str, *validity: str) -> Path:
        out = tmp_path / name
        command = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=proxy",
                   "-keyout", str(tmp_path / f"{name}.key"), "-out", str(out), *validity]  # fmt: skip
        done = subprocess.run(command, capture_output=True, check=False)
        if done.returncode:
            pytest.skip(f"openssl req {' '.join(validity)}: {done.stderr.decode()[:80]}")
        out.write_bytes(out.read_bytes() + (tmp_path / f"{name}.key").read_bytes())
        out.chmod(0o600)
        return out

    status = check_proxy(HOUR, path=req("long", "-days", "2"), backend="openssl")
    assert 2 * 24 * HOUR - 120 < status.seconds_left <= 2 * 24 * HOUR and status.ok
    status = check_proxy(3 * 24 * HOUR, path=req("long2", "-days", "2"), backend="openssl")
    assert "asked for" in status.warning
    # OpenSSL >= 3.4 can date a certificate in the past ("-days 0" is refused)
    expired = req("old", "-not_before", "20200101000000Z", "-not_after", "20200102000000Z")
    with pytest.raises(CredentialError, match="expired .* ago \\(2020-01-02 00:00 UTC\\)"):
        check_proxy(0, path=expired, backend="openssl")


def test_without_cryptography_the_openssl_command_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "cryptography.x509", None)  # import fails
    monkeypatch.setattr(credentials.shutil, "which", lambda name: "/usr/bin/openssl")
    assert credentials._default_backend() == "openssl"
    monkeypatch.setattr(credentials.shutil, "which", lambda name: None)
    with pytest.raises(CredentialError, match="needs the cryptography package .* or the openssl"):
        credentials._default_backend()


@pytest.fixture()
def tmp_token_uid() -> Iterator[int]:
    """A uid nobody has, so ``/tmp/bt_u<uid>`` is this test's own file."""
    uid = 900_000 + os.getpid() % 90_000
    yield uid
    Path(f"/tmp/bt_u{uid}").unlink(missing_ok=True)


def test_bearer_token_discovery_follows_the_wlcg_order(tmp_path: Path, tmp_token_uid: int) -> None:
    uid = tmp_token_uid
    runtime = tmp_path / "run"
    runtime.mkdir()
    assert find_bearer_token({"XDG_RUNTIME_DIR": str(runtime)}, uid) is None
    Path(f"/tmp/bt_u{uid}").write_text("t")
    assert find_bearer_token({"XDG_RUNTIME_DIR": str(runtime)}, uid) == (
        "/tmp",
        Path(f"/tmp/bt_u{uid}"),
    )
    (runtime / f"bt_u{uid}").write_text("t")
    env = {"XDG_RUNTIME_DIR": str(runtime)}
    assert find_bearer_token(env, uid) == ("XDG_RUNTIME_DIR", runtime / f"bt_u{uid}")
    env["BEARER_TOKEN_FILE"] = str(tmp_path / "tok")
    assert find_bearer_token(env, uid) == ("BEARER_TOKEN_FILE", tmp_path / "tok")
    env["BEARER_TOKEN"] = "abc"
    assert find_bearer_token(env, uid) == ("BEARER_TOKEN", None)


def test_bearer_token_lifetime_comes_from_its_exp_claim(tmp_path: Path) -> None:
    token = jwt({"sub": "me", "exp": int((NOW + timedelta(hours=3)).timestamp())})
    path = tmp_path / "tok"
    path.write_text(token + "\n")
    path.chmod(0o600)
    env = {"BEARER_TOKEN_FILE": str(path)}
    status = check_bearer_token(HOUR, environ=env, now=NOW)
    assert status.ok and status.seconds_left == 3 * HOUR and status.source == "BEARER_TOKEN_FILE"
    status = check_bearer_token(6 * HOUR, environ=env, now=NOW)
    assert (
        "has 3 h 0 min left (until 2030-06-01 15:00 UTC), less than the 6 h 0 min" in status.warning
    )
    for text in (status.warning, repr(status)):
        assert token.split(".")[1] not in text
    late = NOW + timedelta(hours=4)
    with pytest.raises(CredentialError, match="bearer token .*/tok expired 1 h 0 min ago"):
        check_bearer_token(environ=env, now=late)


def test_bearer_token_problems(tmp_path: Path) -> None:
    with pytest.raises(CredentialError, match="names .*/none, which does not exist"):
        check_bearer_token(environ={"BEARER_TOKEN_FILE": str(tmp_path / "none")})
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(CredentialError, match="is empty"):
        check_bearer_token(environ={"BEARER_TOKEN_FILE": str(tmp_path / "empty")})
    with pytest.raises(CredentialError, match="no bearer token: none of BEARER_TOKEN"):
        check_bearer_token(environ={}, uid=987_654_321)
    opaque = check_bearer_token(environ={"BEARER_TOKEN": "opaque-secret"}, now=NOW)
    assert opaque.expires is None and opaque.ok and "opaque-secret" not in repr(opaque)
    expired = jwt({"exp": int((NOW - timedelta(minutes=5)).timestamp())})
    with pytest.raises(CredentialError, match="token in BEARER_TOKEN expired 5 min ago") as err:
        check_bearer_token(environ={"BEARER_TOKEN": expired}, now=NOW)
    assert expired not in str(err.value)


def test_check_credentials_follows_the_profile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert check_credentials(load_profile("local")) == []  # needs nothing, checks nothing
    lxplus = load_profile("lxplus")
    monkeypatch.setenv("X509_USER_PROXY", str(tmp_path / "missing"))
    with pytest.raises(CredentialError, match="X509_USER_PROXY names"):
        check_credentials(lxplus, now=NOW)
    make_proxy(tmp_path / "missing", 12)
    (warning,) = check_credentials(lxplus, now=NOW)  # min_proxy_hours = 24
    assert "12 h 0 min left" in warning and "1 d 0 h asked for" in warning
    assert check_credentials(lxplus, required_seconds=6 * HOUR, now=NOW) == []
