"""A real Synapse homeserver on loopback, as a subprocess, for interop tests and benchmarks.

The configuration follows ``/work/shared/notes/synapse-on-loopback.md``: the server name is
``127.0.0.1:<federation port>`` (no DNS, no .well-known), federation is served over TLS with a
self-signed certificate and certificates are not verified, loopback is removed from the IP
blocklist, federation is limited to the servers of the test, rate limits are raised, presence is
off and anyone may register with ``m.login.dummy``. The database is SQLite and everything lives
in one data directory, so the server can be stopped (or killed) and started again on it.

Synapse runs in its own process group; it is stopped through its own PID (SIGTERM, then SIGKILL
after a grace period). Its log goes to ``<data dir>/homeserver.log``; when a start fails, the
tail of that log is in the exception.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import subprocess
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import nio
import signedjson.key
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support import processes

START_TIMEOUT_S = 60.0
STOP_GRACE_S = 10.0
LOG_TAIL_BYTES = 6000

# Synapse's default IP blocklist without 127.0.0.0/8 and ::1/128: its federation client checks
# IP-literal server names against the blocklist only, so loopback has to leave the list.
IP_RANGE_BLOCKLIST = [
    "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10", "192.0.0.0/24",
    "169.254.0.0/16", "192.88.99.0/24", "198.18.0.0/15", "192.0.2.0/24", "198.51.100.0/24",
    "203.0.113.0/24", "224.0.0.0/4", "fe80::/10", "fc00::/7", "2001:db8::/32", "ff00::/8",
    "fec0::/10",
]
_UNLIMITED = {"per_second": 100000, "burst_count": 100000}
RATE_LIMITS: dict[str, Any] = {
    "rc_message": _UNLIMITED,
    "rc_registration": _UNLIMITED,
    "rc_registration_token_validity": _UNLIMITED,
    "rc_login": {"address": _UNLIMITED, "account": _UNLIMITED, "failed_attempts": _UNLIMITED},
    "rc_admin_redaction": _UNLIMITED,
    "rc_joins": {"local": _UNLIMITED, "remote": _UNLIMITED},
    "rc_joins_per_room": _UNLIMITED,
    "rc_key_requests": _UNLIMITED,
    "rc_3pid_validation": _UNLIMITED,
    "rc_invites": {"per_room": _UNLIMITED, "per_user": _UNLIMITED, "per_issuer": _UNLIMITED},
    "rc_third_party_invite": _UNLIMITED,
    "rc_media_create": _UNLIMITED,
    "rc_presence": {"per_user": _UNLIMITED},
    "rc_delayed_event_mgmt": _UNLIMITED,
    "rc_room_creation": _UNLIMITED,
    "rc_reports": _UNLIMITED,
    "rc_user_directory": _UNLIMITED,
    "rc_profile": _UNLIMITED,
    "rc_federation": {"window_size": 1000, "sleep_limit": 100000, "sleep_delay": 1,
                      "reject_limit": 100000, "concurrent": 100000},
}


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_self_signed_certificate(cert_path: Path, key_path: Path) -> None:
    """A self-signed certificate for 127.0.0.1 and localhost (PEM files)."""
    private_key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    names = x509.SubjectAlternativeName([
        x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")])
    certificate = (
        x509.CertificateBuilder().subject_name(subject).issuer_name(subject)
        .public_key(private_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(names, critical=False)
        .sign(private_key, hashes.SHA256())
    )
    key_path.write_bytes(private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


@dataclass
class SynapseConfig:
    """What varies between Synapse instances of the tests."""

    data_dir: Path
    federation_port: int = field(default_factory=free_port)
    client_port: int = field(default_factory=free_port)
    federation_whitelist: tuple[str, ...] = ()
    """Server names Synapse may federate with (its own name is added)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Homeserver config keys to set or override."""

    @property
    def server_name(self) -> str:
        return f"127.0.0.1:{self.federation_port}"

    def homeserver_yaml(self) -> dict[str, Any]:
        data = self.data_dir
        config: dict[str, Any] = {
            "server_name": self.server_name,
            "public_baseurl": f"http://127.0.0.1:{self.client_port}/",
            "pid_file": str(data / "homeserver.pid"),
            "listeners": [
                {"port": self.client_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": False, "x_forwarded": False,
                 "resources": [{"names": ["client"], "compress": False}]},
                {"port": self.federation_port, "bind_addresses": ["127.0.0.1"], "type": "http",
                 "tls": True, "resources": [{"names": ["federation", "keys"],
                                             "compress": False}]},
            ],
            "tls_certificate_path": str(data / "tls.crt"),
            "tls_private_key_path": str(data / "tls.key"),
            "federation_verify_certificates": False,
            "ip_range_blacklist": IP_RANGE_BLOCKLIST,
            "federation_domain_whitelist": sorted({*self.federation_whitelist,
                                                   self.server_name}),
            "federation": {"destination_min_retry_interval": "2s",
                           "destination_max_retry_interval": "10s"},
            "trusted_key_servers": [],
            "suppress_key_server_warning": True,
            "report_stats": False,
            "presence": {"enabled": False},
            "url_preview_enabled": False,
            "allow_public_rooms_over_federation": True,  # off by default in Synapse
            "room_list_publication_rules": [{"action": "allow"}],  # default: nobody publishes
            "enable_registration": True,
            "enable_registration_without_verification": True,
            "filter_timeline_limit": 10000,
            # a repeated /sync with the same token would get a cached answer for 2 minutes
            "caches": {"sync_response_cache_duration": 0},
            "database": {"name": "sqlite3", "args": {"database": str(data / "homeserver.db")}},
            "media_store_path": str(data / "media_store"),
            "signing_key_path": str(data / "signing.key"),
            "log_config": str(data / "log.config"),
            "macaroon_secret_key": "interop-macaroon-secret",
            "form_secret": "interop-form-secret",
            "registration_shared_secret": "interop-registration-secret",
            **RATE_LIMITS,
        }
        config.update(self.extra)
        return config

    def log_yaml(self) -> dict[str, Any]:
        return {
            "version": 1,
            "formatters": {"precise": {"format": "%(asctime)s - %(name)s - %(lineno)d - "
                                                 "%(levelname)s - %(request)s - %(message)s"}},
            "handlers": {"file": {"class": "logging.FileHandler", "formatter": "precise",
                                  "filename": str(self.data_dir / "homeserver.log"),
                                  "encoding": "utf8"}},
            "loggers": {"synapse.storage.SQL": {"level": "WARNING"},
                        "twisted": {"level": "WARNING"}},
            "root": {"level": "INFO", "handlers": ["file"]},
            "disable_existing_loggers": False,
        }


class SynapseError(RuntimeError):
    """Synapse did not start, stop or answer as expected (with the tail of its log)."""


class Synapse:
    """One Synapse homeserver: configure once, then start/stop/kill/restart on the same data."""

    def __init__(self, config: SynapseConfig) -> None:
        self.config = config
        self.poll_interval_s = 0.1
        """How often start() asks whether the client API answers (the benchmarks poll faster
        to time startup finely)."""
        self._process: subprocess.Popen[bytes] | None = None
        self._configured = False

    @property
    def server_name(self) -> str:
        return self.config.server_name

    @property
    def client_url(self) -> str:
        return f"http://127.0.0.1:{self.config.client_port}"

    @property
    def log_path(self) -> Path:
        return self.config.data_dir / "homeserver.log"

    @property
    def config_path(self) -> Path:
        return self.config.data_dir / "homeserver.yaml"

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def user_id(self, localpart: str) -> str:
        return f"@{localpart}:{self.server_name}"

    # -- configuration -----------------------------------------------------------------------

    def configure(self) -> None:
        """Write homeserver.yaml, the log config, the TLS pair and the signing key."""
        data = self.config.data_dir
        data.mkdir(parents=True, exist_ok=True)
        (data / "media_store").mkdir(exist_ok=True)
        self.config_path.write_text(yaml.safe_dump(self.config.homeserver_yaml()),
                                    encoding="utf-8")
        (data / "log.config").write_text(yaml.safe_dump(self.config.log_yaml()),
                                         encoding="utf-8")
        if not (data / "tls.crt").exists():
            write_self_signed_certificate(data / "tls.crt", data / "tls.key")
        if not (data / "signing.key").exists():
            # what `homeserver --generate-keys` writes, without a second Synapse start-up
            with (data / "signing.key").open("w", encoding="ascii") as handle:
                signedjson.key.write_signing_keys(
                    handle, [signedjson.key.generate_signing_key("a_interop")])
        self._configured = True

    # -- process lifecycle -------------------------------------------------------------------

    async def start(self) -> None:
        """Start Synapse and wait until its client API answers."""
        if self.running:
            raise SynapseError("Synapse is already running")
        if not self._configured:
            self.configure()
        with (self.config.data_dir / "stdout.log").open("ab") as output:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "synapse.app.homeserver", "-c", str(self.config_path)],
                cwd=self.config.data_dir, stdout=output, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            await self._wait_until_up()
        except BaseException:
            self.kill()
            raise

    async def _wait_until_up(self) -> None:
        try:
            await processes.wait_for_versions(
                self.client_url, lambda: self.running, START_TIMEOUT_S, self.poll_interval_s)
        except processes.ServerDidNotStart as exc:
            raise SynapseError(f"Synapse: {exc}:\n{self.log_tail()}") from exc

    def stop(self) -> None:
        """SIGTERM to Synapse's own PID; SIGKILL if it has not exited after a grace period."""
        process, self._process = self._process, None
        processes.terminate(process, STOP_GRACE_S)

    def kill(self) -> None:
        """SIGKILL Synapse's own PID at once (a crash)."""
        process, self._process = self._process, None
        processes.kill(process, STOP_GRACE_S)

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await self.start()

    def log_tail(self, size: int = LOG_TAIL_BYTES) -> str:
        text = ""
        for name in ("stdout.log", "homeserver.log"):
            path = self.config.data_dir / name
            if path.exists():
                with path.open("rb") as handle:
                    handle.seek(max(0, path.stat().st_size - size))
                    text += f"--- {name} ---\n" + handle.read().decode("utf-8", "replace")
        return text

    def log_lines(self, *needles: str) -> list[str]:
        """Lines of the homeserver log containing every one of ``needles`` (debugging aid)."""
        if not self.log_path.exists():
            return []
        with self.log_path.open(encoding="utf-8", errors="replace") as handle:
            return [line.rstrip() for line in handle if all(n in line for n in needles)]

    # -- users -------------------------------------------------------------------------------

    async def register(self, localpart: str, password: str = "secret-pw") -> nio.AsyncClient:
        """Register ``localpart`` (UIA ``m.login.dummy``); a logged-in matrix-nio client."""
        return await register_with_dummy_auth(self.client_url, localpart, password)


async def register_with_dummy_auth(homeserver: str, localpart: str,
                                   password: str = "secret-pw") -> nio.AsyncClient:
    """Register on any homeserver through user-interactive auth with ``m.login.dummy``: the
    first request gets the session and flows (401), the second completes the dummy stage."""
    url = f"{homeserver}/_matrix/client/v3/register"
    body: dict[str, Any] = {"username": localpart, "password": password,
                            "initial_device_display_name": "interop"}
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(url, json=body) as response:
            challenge = await response.json(content_type=None)
        if response.status != 401 or not _offers_dummy(challenge.get("flows", [])):
            raise SynapseError(f"Unexpected registration challenge: {challenge}")
        body["auth"] = {"type": "m.login.dummy", "session": challenge.get("session")}
        async with session.post(url, json=body) as response:
            registered = await response.json(content_type=None)
        if response.status != 200:
            raise SynapseError(f"Registration of {localpart} failed: {registered}")
    client = nio.AsyncClient(homeserver, registered["user_id"])
    client.restore_login(registered["user_id"], registered["device_id"],
                         registered["access_token"])
    return client


def _offers_dummy(flows: Iterable[dict[str, Any]]) -> bool:
    return any(flow.get("stages") == ["m.login.dummy"] for flow in flows)
