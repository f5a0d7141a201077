"""Grid credentials, checked before submission: the x509 proxy and WLCG bearer tokens.

condorcof only finds a credential and reads its lifetime. It never copies one, and no message,
log or exception carries a credential's content: HTCondor itself sends the proxy with each job
(``use_x509userproxy = true``), and tokens reach jobs through the access point's credmon.

* The proxy is where ``condor_submit`` and the grid tools look: ``$X509_USER_PROXY``, else
  ``/tmp/x509up_u<uid>``. Its lifetime is the shortest of the certificates in the file (the
  proxy and the chain it carries), read with the ``cryptography`` package when it is installed,
  else with the ``openssl`` command. Only certificate blocks are parsed; the key is never
  handed to anything.
* A bearer token is found as the WLCG discovery rules say: ``$BEARER_TOKEN`` (the token
  itself), ``$BEARER_TOKEN_FILE``, ``$XDG_RUNTIME_DIR/bt_u<uid>``, ``/tmp/bt_u<uid>``. A JWT's
  ``exp`` claim gives its expiry (the signature is not checked: that is the server's job).
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from condorcof.errors import CredentialError

if TYPE_CHECKING:
    from condorcof.sites import SiteProfile

PROXY_HINT = "voms-proxy-init --voms <your VO> --valid 192:00"
TOKEN_HINT = "htgettoken (or your experiment's token tool)"
_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s.*?-----END CERTIFICATE-----", re.S)
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class ProxyStatus:
    """A usable x509 proxy: where it is, its validity, and a warning when it is too short."""

    path: Path
    not_before: datetime
    not_after: datetime
    seconds_left: int
    required_seconds: int
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing needs the user's attention."""
        return self.warning is None


@dataclass(frozen=True)
class TokenStatus:
    """A bearer token found by WLCG discovery (``expires`` is None for a token that is not a JWT)."""

    source: str
    path: Path | None
    expires: datetime | None
    seconds_left: int | None
    required_seconds: int
    warning: str | None = None

    @property
    def ok(self) -> bool:
        """True when nothing needs the user's attention."""
        return self.warning is None


def proxy_path(environ: Mapping[str, str] | None = None, uid: int | None = None) -> Path:
    """Where the proxy is expected: ``$X509_USER_PROXY``, else ``/tmp/x509up_u<uid>``."""
    env = os.environ if environ is None else environ
    explicit = env.get("X509_USER_PROXY")
    return Path(explicit) if explicit else Path(f"/tmp/x509up_u{_uid(uid)}")


def check_proxy(
    required_seconds: int,
    *,
    path: Path | None = None,
    now: datetime | None = None,
    backend: str | None = None,
) -> ProxyStatus:
    """The proxy's status; :class:`CredentialError` when it is missing, unreadable or expired.

    A proxy with less than ``required_seconds`` left is returned with a warning that gives the
    numbers, as is one that other users can read.
    """
    if path is None and os.environ.get("X509_USER_PROXY"):
        missing = f"X509_USER_PROXY names {proxy_path()}, which does not exist"
    else:
        default = "" if path else " (X509_USER_PROXY is not set)"
        missing = f"no x509 proxy at {path or proxy_path()}{default}"
    path = path or proxy_path()
    if not path.is_file():
        raise CredentialError(f"{missing}; create one with: {PROXY_HINT}")
    not_before, not_after = certificate_validity(_read(path, "x509 proxy"), backend, path)
    now = now or datetime.now(UTC)
    left = int((not_after - now).total_seconds())
    if left <= 0:
        raise CredentialError(
            f"x509 proxy {path} expired {_duration(-left)} ago ({_when(not_after)}); "
            f"renew it with: {PROXY_HINT}"
        )
    notes = []
    if left < required_seconds:
        notes.append(
            f"x509 proxy {path} has {_duration(left)} left (until {_when(not_after)}), less "
            f"than the {_duration(required_seconds)} asked for; jobs still queued or running "
            f"then will fail to read data. Renew it with: {PROXY_HINT}"
        )
    if not_before > now:
        notes.append(f"x509 proxy {path} is not valid before {_when(not_before)} (clock skew?)")
    notes += _mode_note(path, "x509 proxy")
    warning = "; ".join(notes) or None
    return ProxyStatus(path, not_before, not_after, left, required_seconds, warning)


def certificate_validity(
    data: bytes, backend: str | None = None, path: Path | str = "the file"
) -> tuple[datetime, datetime]:
    """(latest notBefore, earliest notAfter) over the PEM certificates in ``data``.

    ``backend`` is ``"cryptography"``, ``"openssl"`` or None (the package if installed).
    """
    blocks = _PEM_CERT.findall(data)
    if not blocks:
        raise CredentialError(f"{path} holds no PEM certificate; is it an x509 proxy?")
    read = {"cryptography": _validity_cryptography, "openssl": _validity_openssl}
    window = [read[backend or _default_backend()](block, path) for block in blocks]
    return max(w[0] for w in window), min(w[1] for w in window)


def _default_backend() -> str:
    try:
        import cryptography.x509  # noqa: F401
    except ImportError:
        if shutil.which("openssl"):
            return "openssl"
        raise CredentialError(
            "reading the proxy's lifetime needs the cryptography package "
            "(pip install cryptography) or the openssl command"
        ) from None
    return "cryptography"


def _validity_cryptography(block: bytes, path: Path | str) -> tuple[datetime, datetime]:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(block)
    except ValueError as err:
        raise CredentialError(f"{path} holds a certificate that cannot be read") from err
    if hasattr(cert, "not_valid_after_utc"):  # cryptography >= 42
        return cert.not_valid_before_utc, cert.not_valid_after_utc
    return (
        cert.not_valid_before.replace(tzinfo=UTC),
        cert.not_valid_after.replace(tzinfo=UTC),
    )


def _validity_openssl(block: bytes, path: Path | str) -> tuple[datetime, datetime]:
    command = ["openssl", "x509", "-noout", "-startdate", "-enddate"]
    try:
        done = subprocess.run(command, input=block, capture_output=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        raise CredentialError(f"could not run openssl to read {path}: {err}") from err
    dates = dict(line.split("=", 1) for line in done.stdout.decode().splitlines() if "=" in line)
    if done.returncode or not {"notBefore", "notAfter"} <= dates.keys():
        raise CredentialError(f"{path} holds a certificate that openssl cannot read")
    return _openssl_date(dates["notBefore"]), _openssl_date(dates["notAfter"])


def _openssl_date(text: str) -> datetime:
    """openssl's date, e.g. ``Jan  2 03:04:05 2030 GMT``, independent of the locale.

    >>> _openssl_date("Jan  2 03:04:05 2030 GMT").isoformat()
    '2030-01-02T03:04:05+00:00'
    """
    month, day, clock, year = text.split()[:4]
    hour, minute, second = (int(x) for x in clock.split(":"))
    return datetime(int(year), _MONTHS.index(month) + 1, int(day), hour, minute, second, tzinfo=UTC)


def find_bearer_token(
    environ: Mapping[str, str] | None = None, uid: int | None = None
) -> tuple[str, Path | None] | None:
    """Where the WLCG discovery rules find a token: (source, file), or None when there is none.

    The file is None for ``BEARER_TOKEN``, whose value is the token itself.
    """
    env = os.environ if environ is None else environ
    if env.get("BEARER_TOKEN", "").strip():
        return "BEARER_TOKEN", None
    if env.get("BEARER_TOKEN_FILE"):
        return "BEARER_TOKEN_FILE", Path(env["BEARER_TOKEN_FILE"])
    name = f"bt_u{_uid(uid)}"
    runtime = env.get("XDG_RUNTIME_DIR")
    if runtime and (Path(runtime) / name).is_file():
        return "XDG_RUNTIME_DIR", Path(runtime) / name
    if (Path("/tmp") / name).is_file():
        return "/tmp", Path("/tmp") / name
    return None


def check_bearer_token(
    required_seconds: int = 0,
    *,
    environ: Mapping[str, str] | None = None,
    uid: int | None = None,
    now: datetime | None = None,
) -> TokenStatus:
    """The token's status; :class:`CredentialError` when there is none, or it is empty or expired."""
    env = os.environ if environ is None else environ
    found = find_bearer_token(env, uid)
    if found is None:
        raise CredentialError(
            "no bearer token: none of BEARER_TOKEN, BEARER_TOKEN_FILE, "
            f"$XDG_RUNTIME_DIR/bt_u{_uid(uid)}, /tmp/bt_u{_uid(uid)}; get one with {TOKEN_HINT}"
        )
    source, path = found
    where = f"bearer token {path}" if path else "bearer token in BEARER_TOKEN"
    if path is not None and not path.is_file():
        raise CredentialError(f"{source} names {path}, which does not exist")
    token = env["BEARER_TOKEN"].encode() if path is None else _read(path, "bearer token")
    if not token.strip():
        raise CredentialError(f"{where} is empty; get one with {TOKEN_HINT}")
    expires = _jwt_expiry(token)
    notes = _mode_note(path, "bearer token") if path else []
    if expires is None:  # opaque: its lifetime is the issuer's secret
        return TokenStatus(source, path, None, None, required_seconds, "; ".join(notes) or None)
    left = int((expires - (now or datetime.now(UTC))).total_seconds())
    if left <= 0:
        raise CredentialError(
            f"{where} expired {_duration(-left)} ago ({_when(expires)}); renew it with {TOKEN_HINT}"
        )
    if left < required_seconds:
        notes.insert(
            0,
            f"{where} has {_duration(left)} left (until {_when(expires)}), less than the "
            f"{_duration(required_seconds)} asked for; make sure something renews it",
        )
    return TokenStatus(source, path, expires, left, required_seconds, "; ".join(notes) or None)


def _jwt_expiry(token: bytes) -> datetime | None:
    """The ``exp`` claim of a JWT, or None for anything else (opaque tokens)."""
    parts = token.strip().split(b".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + b"=" * (-len(parts[1]) % 4)))
        return datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (binascii.Error, ValueError, TypeError, KeyError, OverflowError):
        return None


def check_credentials(
    profile: SiteProfile, required_seconds: int | None = None, now: datetime | None = None
) -> list[str]:
    """Check what ``profile`` needs before submitting; returns the warnings to show.

    The proxy must have ``required_seconds`` left (default: the profile's ``min_proxy_hours``).
    Raises :class:`CredentialError` when a needed credential is missing or expired.
    """
    warnings = []
    if profile.x509:
        need = profile.min_proxy_hours * 3600 if required_seconds is None else required_seconds
        warnings.append(check_proxy(need, now=now).warning)
    if profile.bearer_token:
        warnings.append(check_bearer_token(0, now=now).warning)
    return [w for w in warnings if w]


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as err:
        raise CredentialError(f"cannot read {what} {path}: {err.strerror}") from err


def _mode_note(path: Path, what: str) -> list[str]:
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        return [f"{what} {path} can be read by other users (mode {mode:o}): chmod 600 {path}"]
    return []


def _uid(uid: int | None) -> int:
    return os.getuid() if uid is None else uid


def _when(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: int) -> str:
    """A short human duration.

    >>> _duration(45), _duration(3000), _duration(5 * 3600 + 120), _duration(200000)
    ('45 s', '50 min', '5 h 2 min', '2 d 7 h')
    """
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"
