"""Starting real RocketNodes in tests (loopback only, data in a temporary directory)."""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import nio

from rocketnode.app import Node
from rocketnode.config import Config, Listen

_counter = itertools.count(1)


def node_config(data_dir: Path, server_name: str | None = None, **overrides: Any) -> Config:
    """A config for a test node: ephemeral ports, open registration, no rate limits."""
    config = Config(
        server_name=server_name or f"127.0.0.1:{20000 + next(_counter)}",
        data_dir=data_dir,
        client_listen=Listen("127.0.0.1", 0),
        federation_listen=Listen("127.0.0.1", 0),
        open_registration=True,
        rate_limits_enabled=False,
        federation_verify_tls=False,
        federation_loopback_only=True,
        federation_retry_initial_ms=200,
        federation_retry_max_ms=2000,
    )
    return dataclasses.replace(config, **overrides)


@asynccontextmanager
async def running_node(config: Config) -> AsyncIterator[Node]:
    node = Node(config)
    await node.start()
    try:
        yield node
    finally:
        await node.stop()


ClientFactory = Callable[..., Awaitable[nio.AsyncClient]]


@asynccontextmanager
async def client_factory() -> AsyncIterator[ClientFactory]:
    """Registers matrix-nio clients on a node and closes them all at the end."""
    clients: list[nio.AsyncClient] = []

    async def make(node: Node, username: str, password: str = "secret-pw") -> nio.AsyncClient:
        client = nio.AsyncClient(node.client_url, username)
        clients.append(client)
        response = await client.register(username, password)
        assert isinstance(response, nio.RegisterResponse), response
        return client

    try:
        yield make
    finally:
        for client in clients:
            await client.close()
