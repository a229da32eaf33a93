"""Interop fixtures: one real Synapse and one or two in-process RocketNodes on loopback.

Servers are started once per test module (``servers``) and stopped at its end; a module that
needs a second RocketNode sets ``ROCKETNODES = 2``; one that needs RocketNodes as separate
processes (to kill them) sets ``ROCKETNODE_PROCESSES``. Every server's name is
``127.0.0.1:<federation port>``; ports are picked up front so that every server's federation
whitelist names exactly the servers of the module, and so that a server can be stopped and
started again on the same data directory and ports.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import nio
import pytest
import pytest_asyncio

from rocketnode.config import Listen
from tests.nodes import node_config
from tests.support.rocketnode import NodeHandle, RocketNodeProcess
from tests.support.synapse import Synapse, SynapseConfig, free_port, register_with_dummy_auth

RocketNode = NodeHandle


Server = Synapse | RocketNode | RocketNodeProcess


class Servers:
    """The servers of one test module and the clients registered on them."""

    def __init__(self, root: Path, rocketnodes: int, processes: int = 0) -> None:
        rocket_ports = [(free_port(), free_port()) for _ in range(rocketnodes + processes)]
        rocket_names = [f"127.0.0.1:{federation}" for federation, _ in rocket_ports]
        self.synapse = Synapse(SynapseConfig(root / "synapse",
                                             federation_whitelist=tuple(rocket_names)))
        everyone = (*rocket_names, self.synapse.server_name)
        configs = [
            node_config(root / f"rocket{i + 1}", server_name=name,
                        federation_listen=Listen("127.0.0.1", federation),
                        client_listen=Listen("127.0.0.1", client),
                        federation_domain_whitelist=everyone)
            for i, (name, (federation, client)) in enumerate(
                zip(rocket_names, rocket_ports, strict=True))
        ]
        self.rockets = [RocketNode(f"rocket{i + 1}", config)
                        for i, config in enumerate(configs[:rocketnodes])]
        self.processes = [RocketNodeProcess(config) for config in configs[rocketnodes:]]
        """RocketNodes run as ``rocketnode serve`` subprocesses (for kill -9)."""
        self._clients: list[nio.AsyncClient] = []

    @property
    def rocket(self) -> RocketNode:
        return self.rockets[0]

    async def start(self) -> None:
        await self.synapse.start()
        for rocket in self.rockets:
            await rocket.start()
        for process in self.processes:
            await process.start()

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
        try:
            for rocket in reversed(self.rockets):
                await rocket.stop()
        finally:
            for process in self.processes:
                await asyncio.to_thread(process.stop)
            await asyncio.to_thread(self.synapse.stop)

    async def user(self, server: Server, localpart: str) -> nio.AsyncClient:
        """Register ``localpart`` on ``server`` (UIA m.login.dummy); a logged-in nio client."""
        client = await register_with_dummy_auth(server.client_url, localpart)
        self._clients.append(client)
        return client

    def again(self, client: nio.AsyncClient) -> nio.AsyncClient:
        """A second nio client on the same session (for a client pointed at a restarted
        server, or a script that needs its own sync position)."""
        copy = nio.AsyncClient(client.homeserver, client.user_id, device_id=client.device_id)
        copy.restore_login(client.user_id, client.device_id, client.access_token)
        self._clients.append(copy)
        return copy


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def servers(request: pytest.FixtureRequest,
                  tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Servers]:
    root = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    started = Servers(root, getattr(request.module, "ROCKETNODES", 1),
                      getattr(request.module, "ROCKETNODE_PROCESSES", 0))
    try:
        await started.start()
        yield started
    finally:
        await started.close()
