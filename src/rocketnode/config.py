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

from rocketnode.core.errors import InvalidIdentifier
from rocketnode.core.ids import ServerName


@dataclass(frozen=True, slots=True)
class Listen:
    host: str
    port: int

    @classmethod
    def parse(cls, value: str) -> Listen:
        host, sep, port = value.rpartition(":")
        if not sep or not port.isdigit() or int(port) > 65535:
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
    federation_trusted_key_servers: tuple[str, ...] = ()
    federation_loopback_only: bool = False
    federation_retry_initial_ms: int = 2_000
    federation_retry_max_ms: int = 300_000
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
# Notary servers asked for another server's signing keys when that server cannot be reached.
trusted_key_servers = []
# For test setups: contact only servers whose name is a loopback address or "localhost".
loopback_only = false
# Backoff of an unreachable destination: the first retry after retry_initial_ms, doubling up
# to retry_max_ms. Any request from that server, or a success, resets it.
retry_initial_ms = 2000
retry_max_ms = 300000

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


_DOCUMENTED: dict[str, Any] = tomllib.loads(DEFAULT_CONFIG_TOML)
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
AVAILABLE_BACKENDS = ("sqlite",)
"""Database backends this version can open (PostgreSQL is documented, not yet built)."""


def _check_known_keys(raw: dict[str, Any], documented: dict[str, Any], where: str = "") -> None:
    """Refuse keys that :data:`DEFAULT_CONFIG_TOML` does not document (most likely typos)."""
    for key, value in raw.items():
        if key not in documented:
            raise ValueError(f"config.toml: unknown key '{where}{key}'")
        if isinstance(documented[key], dict) and isinstance(value, dict):
            _check_known_keys(value, documented[key], f"{where}{key}.")


def _table(raw: dict[str, Any], name: str, where: str = "") -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ValueError(f"config.toml: {where}{name} must be a table")
    return value


def _value(table: dict[str, Any], key: str, kind: type, default: Any, where: str = "") -> Any:
    """``table[key]`` if it has type ``kind`` (an int is a fine float; a bool is no int)."""
    if key not in table:
        return default
    value = table[key]
    if kind is float and type(value) is int:
        value = float(value)
    if not isinstance(value, kind) or (kind in (int, float) and isinstance(value, bool)):
        raise ValueError(f"config.toml: {where}{key} must be of type {kind.__name__}")
    return value


def _rate(table: dict[str, Any], name: str, default: RateLimitConfig) -> RateLimitConfig:
    value = _table(table, name, "rate_limits.")
    where = f"rate_limits.{name}."
    return RateLimitConfig(_value(value, "per_second", float, default.per_second, where),
                           _value(value, "burst", int, default.burst, where))


def _listen(raw: dict[str, Any], key: str, default: Listen) -> Listen:
    return Listen.parse(_value(raw, key, str, str(default)))


def parse_config(text: str, data_dir: Path) -> Config:
    """Build a :class:`Config` from TOML text; ``ValueError`` with the reason if it is wrong."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"config.toml: {exc}") from exc
    _check_known_keys(raw, _DOCUMENTED)
    db, keys = _table(raw, "database"), _table(raw, "keys")
    fed, wk = _table(raw, "federation"), _table(raw, "well_known")
    limits, presence = _table(raw, "rate_limits"), _table(raw, "presence")
    base = Config()
    whitelist = _value(fed, "domain_whitelist", list, [], "federation.")
    notaries = _value(fed, "trusted_key_servers", list, [], "federation.")
    if not all(isinstance(name, str) for name in [*whitelist, *notaries]):
        raise ValueError("config.toml: federation.domain_whitelist and trusted_key_servers"
                         " must list server names")
    config = Config(
        server_name=_value(raw, "server_name", str, base.server_name),
        data_dir=data_dir,
        client_listen=_listen(raw, "client_listen", base.client_listen),
        federation_listen=_listen(raw, "federation_listen", base.federation_listen),
        open_registration=_value(raw, "open_registration", bool, base.open_registration),
        database_backend=_value(db, "backend", str, base.database_backend, "database."),
        database_path=_value(db, "path", str, base.database_path, "database."),
        database_readers=_value(db, "readers", int, base.database_readers, "database."),
        database_synchronous=_value(
            db, "synchronous", str, base.database_synchronous, "database."
        ).upper(),
        postgres_dsn=_value(db, "postgres_dsn", str, base.postgres_dsn, "database."),
        signing_key_file=_value(keys, "signing_key_file", str, base.signing_key_file, "keys."),
        tls_certificate_file=_value(
            keys, "tls_certificate_file", str, base.tls_certificate_file, "keys."
        ),
        tls_private_key_file=_value(
            keys, "tls_private_key_file", str, base.tls_private_key_file, "keys."
        ),
        federation_enabled=_value(fed, "enabled", bool, base.federation_enabled, "federation."),
        federation_verify_tls=_value(
            fed, "verify_tls", bool, base.federation_verify_tls, "federation."
        ),
        federation_domain_whitelist=tuple(whitelist),
        federation_trusted_key_servers=tuple(notaries),
        federation_loopback_only=_value(fed, "loopback_only", bool, False, "federation."),
        federation_retry_initial_ms=_value(
            fed, "retry_initial_ms", int, base.federation_retry_initial_ms, "federation."),
        federation_retry_max_ms=_value(
            fed, "retry_max_ms", int, base.federation_retry_max_ms, "federation."),
        well_known_server=_value(wk, "server", str, base.well_known_server, "well_known."),
        well_known_client=_value(wk, "client", str, base.well_known_client, "well_known."),
        max_request_bytes=_value(raw, "max_request_bytes", int, base.max_request_bytes),
        rate_limits_enabled=_value(limits, "enabled", bool, True, "rate_limits."),
        rate_limit_messages=_rate(limits, "messages", base.rate_limit_messages),
        rate_limit_login=_rate(limits, "login", base.rate_limit_login),
        rate_limit_registration=_rate(limits, "registration", base.rate_limit_registration),
        rate_limit_joins=_rate(limits, "joins", base.rate_limit_joins),
        presence_enabled=_value(presence, "enabled", bool, False, "presence."),
        log_level=_value(raw, "log_level", str, base.log_level).upper(),
    )
    validate(config)
    return config


def _check_server_name(server_name: str) -> None:
    try:
        ServerName.parse(server_name)
    except InvalidIdentifier as exc:
        raise ValueError(f"server_name: {exc.message}") from exc


def validate(config: Config) -> None:
    _check_server_name(config.server_name)
    if config.database_backend not in ("sqlite", "postgres"):
        raise ValueError("database.backend must be 'sqlite' or 'postgres'")
    if config.database_synchronous not in ("NORMAL", "FULL"):
        raise ValueError("database.synchronous must be NORMAL or FULL")
    if config.database_backend == "postgres" and not config.postgres_dsn:
        raise ValueError("database.postgres_dsn is required with backend = 'postgres'")
    if config.database_backend not in AVAILABLE_BACKENDS:
        raise ValueError(f"database.backend {config.database_backend!r} is not available in"
                         " this version; use 'sqlite'")
    if config.database_readers < 1:
        raise ValueError("database.readers must be at least 1")
    if config.max_request_bytes < 1024:
        raise ValueError("max_request_bytes must be at least 1024")
    if config.log_level not in LOG_LEVELS:
        raise ValueError(f"log_level must be one of {', '.join(LOG_LEVELS)}")
    for name in ("messages", "login", "registration", "joins"):
        limit: RateLimitConfig = getattr(config, f"rate_limit_{name}")
        if not limit.per_second > 0 or limit.burst < 1:
            raise ValueError(f"rate_limits.{name} needs per_second > 0 and burst >= 1")


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
            _check_server_name(server_name)
            text = text.replace('server_name = "localhost"', f'server_name = "{server_name}"')
        path.write_text(text, encoding="utf-8")
    return parse_config(path.read_text(encoding="utf-8"), data_dir)
