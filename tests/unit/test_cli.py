"""The ``rocketnode`` command, run as a real process: serve, register, signals, restart.

Every process listens on 127.0.0.1 only, with ports the system picks, and is killed by its
own PID if a test fails half way.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from cryptography import x509

from rocketnode.config import DEFAULT_CONFIG_TOML

START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SERVER_NAME = "cli.test"
PASSWORD = "correct horse battery"
V3 = "/_matrix/client/v3"


def command() -> list[str]:
    """The installed console script if there is one, else ``python -m rocketnode.cli``."""
    script = Path(sys.executable).with_name("rocketnode")
    if script.exists():
        return [str(script)]
    found = shutil.which("rocketnode")
    return [found] if found else [sys.executable, "-m", "rocketnode.cli"]


async def run(*args: str, password: str | None = None, module: bool = False,
              cwd: Path | None = None) -> tuple[int, str, str]:
    """Run the command to completion; ``(exit code, stdout, stderr)``."""
    env = dict(os.environ)
    env.pop("ROCKETNODE_PASSWORD", None)
    if password is not None:
        env["ROCKETNODE_PASSWORD"] = password
    program = [sys.executable, "-m", "rocketnode.cli"] if module else command()
    process = await asyncio.create_subprocess_exec(
        *program, *args, env=env, cwd=cwd, stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), START_TIMEOUT_S)
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


class Server:
    """One ``rocketnode serve`` process."""

    def __init__(self, data_dir: Path, log: Path, *flags: str) -> None:
        self.data_dir = data_dir
        self.log = log
        self.flags = flags
        self.process: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> str:
        with self.log.open("ab") as log:
            self.process = await asyncio.create_subprocess_exec(
                *command(), "serve", "--data-dir", str(self.data_dir),
                "--client-listen", "127.0.0.1:0", "--federation-listen", "127.0.0.1:0",
                *self.flags,
                stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE, stderr=log,
            )
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), START_TIMEOUT_S)
        found = re.search(r"clients on (http://127\.0\.0\.1:(\d+))", line.decode())
        assert found, (line, self.log.read_text())
        assert int(found.group(2)) != 0
        self.url = found.group(1)
        return self.url

    async def stop(self, signum: signal.Signals = signal.SIGTERM) -> int:
        assert self.process is not None
        self.process.send_signal(signum)
        return await asyncio.wait_for(self.process.wait(), STOP_TIMEOUT_S)

    async def kill(self) -> None:
        if self.process is not None and self.process.returncode is None:
            self.process.kill()
            await self.process.wait()


@pytest.fixture
async def servers() -> AsyncIterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        await server.kill()


async def call(session: aiohttp.ClientSession, url: str, method: str, path: str,
               token: str | None = None, body: Any = None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with session.request(method, url + path, json=body, headers=headers) as response:
        return response.status, await response.json()


async def login(session: aiohttp.ClientSession, url: str, user: str) -> str:
    status, body = await call(session, url, "POST", f"{V3}/login", body={
        "type": "m.login.password", "identifier": {"type": "m.id.user", "user": user},
        "password": PASSWORD,
    })
    assert status == 200, body
    token = body["access_token"]
    assert isinstance(token, str)
    return token


async def test_serve_register_stop_and_resume(tmp_path: Path, servers: list[Server]) -> None:
    data_dir = tmp_path / "data"
    code, out, err = await run("register", "alice", "--admin", "--data-dir", str(data_dir),
                               "--server-name", SERVER_NAME, password=PASSWORD)
    assert code == 0, err
    assert f"Registered @alice:{SERVER_NAME} (admin)" in out

    server = Server(data_dir, tmp_path / "serve.log", "--open-registration")
    servers.append(server)
    url = await server.start()
    for name in ("config.toml", "signing.key", "federation.crt", "federation.key",
                 "homeserver.db"):
        assert (data_dir / name).is_file(), name
    assert f'server_name = "{SERVER_NAME}"' in (data_dir / "config.toml").read_text()
    assert (data_dir / "signing.key").stat().st_mode & 0o077 == 0
    assert (data_dir / "federation.key").stat().st_mode & 0o077 == 0
    signing_key = (data_dir / "signing.key").read_text()
    assert signing_key.startswith("ed25519 ")
    certificate = x509.load_pem_x509_certificate((data_dir / "federation.crt").read_bytes())
    names = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert SERVER_NAME in names.get_values_for_type(x509.DNSName)

    async with aiohttp.ClientSession() as session:
        token = await login(session, url, "alice")
        status, body = await call(session, url, "POST", f"{V3}/createRoom", token,
                                  {"name": "CLI room"})
        assert status == 200, body
        room_id = body["room_id"]
        status, body = await call(session, url, "PUT",
                                  f"{V3}/rooms/{room_id}/send/m.room.message/cli1", token,
                                  {"msgtype": "m.text", "body": "before the restart"})
        assert status == 200, body
        first_event = body["event_id"]

        # A second process registers next to the running server (same database).
        code, out, err = await run("register", "bob", "--data-dir", str(data_dir),
                                   password=PASSWORD, module=True)
        assert code == 0, err
        assert f"Registered @bob:{SERVER_NAME}" in out and "admin" not in out
        bob_token = await login(session, url, "bob")
        status, body = await call(session, url, "POST", f"{V3}/register", body={
            "username": "carol", "password": PASSWORD, "auth": {"type": "m.login.dummy"},
        })
        assert status == 200, body  # --open-registration

    assert await server.stop(signal.SIGTERM) == 0
    code, _, err = await run("register", "bob", "--data-dir", str(data_dir), password="x")
    assert code == 1 and "already taken" in err
    log = server.log.read_text()
    assert "Shutting down" in log and "stopped" in log
    assert re.search(r"POST /_matrix/client/v3/createRoom 200 \d+(\.\d+)?ms", log)
    for secret in (token, bob_token, PASSWORD, "before the restart"):
        assert secret not in log

    again = Server(data_dir, tmp_path / "serve-again.log")
    servers.append(again)
    url = await again.start()
    assert (data_dir / "signing.key").read_text() == signing_key
    async with aiohttp.ClientSession() as session:
        status, body = await call(session, url, "GET", f"{V3}/account/whoami", token)
        assert (status, body["user_id"]) == (200, f"@alice:{SERVER_NAME}")
        status, body = await call(session, url, "POST", f"{V3}/register", body={
            "username": "dave", "password": PASSWORD, "auth": {"type": "m.login.dummy"},
        })
        assert (status, body["errcode"]) == (403, "M_FORBIDDEN")  # the flag was not saved
        status, body = await call(session, url, "GET", f"{V3}/joined_rooms", token)
        assert (status, body["joined_rooms"]) == (200, [room_id])
        status, body = await call(session, url, "PUT",
                                  f"{V3}/rooms/{room_id}/send/m.room.message/cli1", token,
                                  {"msgtype": "m.text", "body": "a retry"})
        assert (status, body["event_id"]) == (200, first_event)  # the txn ID is remembered
        status, body = await call(session, url, "POST", f"{V3}/rooms/{room_id}/invite", token,
                                  {"user_id": f"@bob:{SERVER_NAME}"})
        assert status == 200, body
        status, body = await call(session, url, "POST", f"{V3}/join/{room_id}", bob_token, {})
        assert status == 200, body
    assert await again.stop(signal.SIGINT) == 0


async def test_register_refuses_bad_input_without_a_traceback(tmp_path: Path) -> None:
    code, _, err = await run("register", "not a name", password=PASSWORD, cwd=tmp_path)
    assert code == 1 and "Traceback" not in err and "not a name" in err
    code, _, err = await run("register", "nopassword", cwd=tmp_path)
    assert code == 1 and "password is required" in err
    # Without --data-dir everything lives in ./rocketnode-data.
    assert (tmp_path / "rocketnode-data" / "config.toml").read_text() == DEFAULT_CONFIG_TOML
    assert (tmp_path / "rocketnode-data" / "homeserver.db").is_file()


async def test_a_broken_config_stops_the_start_with_the_reason(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "config.toml").write_text(
        DEFAULT_CONFIG_TOML.replace("open_registration = false", 'open_registration = "no"')
    )
    code, _, err = await run("serve", "--data-dir", str(data_dir))
    assert code == 2
    assert "open_registration" in err and "Traceback" not in err


async def test_an_address_in_use_is_reported_and_nothing_is_left_open(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code, _, err = await run("serve", "--data-dir", str(data_dir),
                                 "--client-listen", f"127.0.0.1:{port}")
    assert code == 1
    assert "Traceback" not in err and str(port) in err
    assert not (data_dir / "homeserver.db-wal").exists()  # the database was closed cleanly
