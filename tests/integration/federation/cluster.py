"""Several RocketNodes federating on loopback (the client helpers that drive and compare them
are in :mod:`tests.support.matrix`).

Each node's server name is ``127.0.0.1:<federation port>``. Ports are picked once (bind to
port 0, read the port, close) and kept, so a node can be stopped and started again on the same
data directory and ports, and clients pointed at it keep working across the restart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import nio

from rocketnode.config import Listen
from tests.nodes import ClientFactory, node_config
from tests.support.rocketnode import NodeHandle
from tests.support.synapse import free_port


class Cluster:
    """Starts named nodes under one directory and stops them all at the end."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self.handles: dict[str, NodeHandle] = {}

    def configure(self, name: str, **overrides: Any) -> NodeHandle:
        federation_port, client_port = free_port(), free_port()
        config = node_config(
            self._root / name, server_name=f"127.0.0.1:{federation_port}",
            federation_listen=Listen("127.0.0.1", federation_port),
            client_listen=Listen("127.0.0.1", client_port), **overrides)
        handle = self.handles[name] = NodeHandle(name, config)
        return handle

    async def start(self, name: str, **overrides: Any) -> NodeHandle:
        handle = self.configure(name, **overrides)
        await handle.start()
        return handle

    async def close(self) -> None:
        """Stop every node, even when stopping one of them fails."""
        failures: list[BaseException] = []
        for handle in reversed(list(self.handles.values())):
            try:
                await handle.stop()
            except Exception as exc:
                failures.append(exc)
        if failures:
            raise failures[0]


async def register_admin(handle: NodeHandle, localpart: str,
                         password: str = "admin-pw") -> nio.AsyncClient:
    await handle.node.services.accounts.register(localpart, password, is_admin=True)
    client = nio.AsyncClient(handle.client_url, handle.user_id(localpart))
    login = await client.login(password)
    assert isinstance(login, nio.LoginResponse), login
    return client


__all__ = ["ClientFactory", "Cluster", "NodeHandle"]
