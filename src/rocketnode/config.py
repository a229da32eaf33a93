"""Configuration: a documented TOML file in the data directory, overridden by command-line flags.

On first start ``rocketnode serve`` writes ``config.toml`` with every key and its default (see
:data:`DEFAULT_CONFIG_TOML`); edit it and restart to change the node.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rocketnode.core.ids import ServerName


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> Listen:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit():
            raise ValueError(f"Expected HOST:PORT, got {value!r}")
        return cls(host.strip("[]") or "127.0.0.1", int(port))

    def __str__(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


@dataclass(frozen=True, slots=True)
class RateLimitConfig:
    per_second: float
    burst: int


@dataclass(frozen=True, slots=True)
class Config:
    server_name: str = "localhost"
    data_dir: Path = Path("rocketnode-data")
    client_listen: Listen = Listen("127.0.0.1", 8008)
    federation_listen: Listen = Listen("127.0.0.1", 8448)
    open_registration: bool = False
    database_backend: str = "sqlite"
    database_path: str = "homeserver.db"
    database_readers: int = 4
    database_synchronous: str = "NORMAL"
    postgres_dsn: str = ""
    signing_key_file: str = "signing.key"
    tls_certificate_file: str = "federation.crt"
    tls_private_key_file: str = "federation.key"
    federation_enabled: bool = True
    federation_verify_tls: bool = True
    federation_domain_whitelist: tuple[str, ...] = ()
    well_known_server: str = ""
    well_known_client: str = ""
    max_request_bytes: int = 1_048_576
    rate_limits_enabled: bool = True
    rate_limit_messages: RateLimitConfig = RateLimitConfig(10.0, 50)
    rate_limit_login: RateLimitConfig = RateLimitConfig(1.0, 10)
    rate_limit_registration: RateLimitConfig = RateLimitConfig(1.0, 10)
    rate_limit_joins: RateLimitConfig = RateLimitConfig(2.0, 20)
    presence_enabled: bool = False
    log_level: str = "INFO"
    extra: dict[str, Any] = field(default_factory=dict)

    def path(self, name: str) -> Path:
        """A file in the data directory (absolute names are kept as they are)."""
        candidate = Path(name)
        return candidate if candidate.is_absolute() else self.data_dir / candidate


DEFAULT_CONFIG_TOML = """\
# RocketNode configuration. Every key is shown with its default; command-line flags of
# `rocketnode serve` (--server-name, --data-dir, --client-listen, --federation-listen,
# --open-registration) override what is set here.

# The name of this server: the part after ':' in user IDs and room aliases. It cannot change
# once users exist. An IP literal with a port (e.g. "127.0.0.1:8448") needs no DNS.
server_name = "localhost"

# Where the client-server API (and the web client) listens, as HOST:PORT.
client_listen = "127.0.0.1:8008"

# Where the server-server (federation) API listens, over TLS, as HOST:PORT.
federation_listen = "127.0.0.1:8448"

# Whether anyone may register an account through the client API (m.login.dummy).
# When false, create accounts with `rocketnode register USER`.
open_registration = false

# Largest request body accepted, in bytes.
max_request_bytes = 1048576

# Log level: DEBUG, INFO, WARNING or ERROR.
log_level = "INFO"

[database]
# "sqlite" (embedded, the default) or "postgres".
backend = "sqlite"
# SQLite file, relative to the data directory.
path = "homeserver.db"
# Parallel reader connections.
readers = 4
# "NORMAL" survives a crash of the process; "FULL" also survives a power loss, slower.
synchronous = "NORMAL"
# PostgreSQL connection string, used when backend = "postgres".
postgres_dsn = ""

[keys]
# Signing key, in the same format as Synapse's (`ed25519 <version> <seed>`), so an existing
# key can be brought along. Created on first start.
signing_key_file = "signing.key"
# TLS certificate and key of the federation listener. A self-signed pair is created on first
# start; replace them with a certificate for server_name to federate on the internet.
tls_certificate_file = "federation.crt"
tls_private_key_file = "federation.key"

[federation]
enabled = true
# Verify other servers' TLS certificates. Turn off ONLY for test setups on loopback with
# self-signed certificates: without verification anyone on the path can impersonate a server.
verify_tls = true
# If not empty, federate only with these server names.
domain_whitelist = []

[well_known]
# Served at /.well-known/matrix/server when set, e.g. "matrix.example.org:443".
server = ""
# Served at /.well-known/matrix/client when set, e.g. "https://matrix.example.org".
client = ""

[rate_limits]
enabled = true
# Messages and state events sent by one user.
messages = { per_second = 10.0, burst = 50 }
# Login attempts per user name or address.
login = { per_second = 1.0, burst = 10 }
# Registrations per address.
registration = { per_second = 1.0, burst = 10 }
# Room joins by one user.
joins = { per_second = 2.0, burst = 20 }

[presence]
# Presence is off by default: its endpoints answer, but nothing is tracked or sent.
enabled = false
"""


def _rate(table: dict[str, Any], name: str, default: RateLimitConfig) -> RateLimitConfig:
    value = table.get(name)
    if value is None:
        return default
    return RateLimitConfig(float(value["per_second"]), int(value["burst"]))


def parse_config(text: str, data_dir: Path) -> Config:
    """Build a :class:`Config` from TOML text; ``ValueError`` with the reason if it is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config.toml: {exc}") from exc
    db, keys = raw.get("database", {}), raw.get("keys", {})
    fed, wk = raw.get("federation", {}), raw.get("well_known", {})
    limits, presence = raw.get("rate_limits", {}), raw.get("presence", {})
    base = Config()
    config = Config(
        server_name=str(raw.get("server_name", base.server_name)),
        data_dir=data_dir,
        client_listen=Listen.parse(str(raw.get("client_listen", base.client_listen))),
        federation_listen=Listen.parse(str(raw.get("federation_listen", base.federation_listen))),
        open_registration=bool(raw.get("open_registration", base.open_registration)),
        database_backend=str(db.get("backend", base.database_backend)),
        database_path=str(db.get("path", base.database_path)),
        database_readers=int(db.get("readers", base.database_readers)),
        database_synchronous=str(db.get("synchronous", base.database_synchronous)).upper(),
        postgres_dsn=str(db.get("postgres_dsn", base.postgres_dsn)),
        signing_key_file=str(keys.get("signing_key_file", base.signing_key_file)),
        tls_certificate_file=str(keys.get("tls_certificate_file", base.tls_certificate_file)),
        tls_private_key_file=str(keys.get("tls_private_key_file", base.tls_private_key_file)),
        federation_enabled=bool(fed.get("enabled", base.federation_enabled)),
        federation_verify_tls=bool(fed.get("verify_tls", base.federation_verify_tls)),
        federation_domain_whitelist=tuple(str(s) for s in fed.get("domain_whitelist", [])),
        well_known_server=str(wk.get("server", "")),
        well_known_client=str(wk.get("client", "")),
        max_request_bytes=int(raw.get("max_request_bytes", base.max_request_bytes)),
        rate_limits_enabled=bool(limits.get("enabled", True)),
        rate_limit_messages=_rate(limits, "messages", base.rate_limit_messages),
        rate_limit_login=_rate(limits, "login", base.rate_limit_login),
        rate_limit_registration=_rate(limits, "registration", base.rate_limit_registration),
        rate_limit_joins=_rate(limits, "joins", base.rate_limit_joins),
        presence_enabled=bool(presence.get("enabled", False)),
        log_level=str(raw.get("log_level", base.log_level)).upper(),
    )
    validate(config)
    return config


def validate(config: Config) -> None:
    ServerName.parse(config.server_name)
    if config.database_backend not in ("sqlite", "postgres"):
        raise ValueError("database.backend must be 'sqlite' or 'postgres'")
    if config.database_synchronous not in ("NORMAL", "FULL"):
        raise ValueError("database.synchronous must be NORMAL or FULL")
    if config.database_backend == "postgres" and not config.postgres_dsn:
        raise ValueError("database.postgres_dsn is required with backend = 'postgres'")


def with_overrides(config: Config, **overrides: Any) -> Config:
    """``config`` with the given fields replaced (flags win over the file); validated."""
    updated = dataclasses.replace(config, **{k: v for k, v in overrides.items() if v is not None})
    validate(updated)
    return updated


def load_or_create(data_dir: Path, server_name: str | None = None) -> Config:
    """Read ``data_dir/config.toml``, writing the documented defaults there first if absent.

    ``server_name`` is written into a new file, since it cannot change once users exist.
    """
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / "config.toml"
    if not path.exists():
        text = DEFAULT_CONFIG_TOML
        if server_name is not None:
            ServerName.parse(server_name)
            text = text.replace('server_name = "localhost"', f'server_name = "{server_name}"')
        path.write_text(text, encoding="utf-8")
    return parse_config(path.read_text(encoding="utf-8"), data_dir)
