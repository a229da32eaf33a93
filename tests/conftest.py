"""Shared fixtures: a running node and a factory of registered matrix-nio clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from rocketnode.app import Node
from tests.nodes import ClientFactory, client_factory, node_config, running_node


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[Node]:
    async with running_node(node_config(tmp_path / "node")) as started:
        yield started


@pytest.fixture
async def make_client() -> AsyncIterator[ClientFactory]:
    async with client_factory() as make:
        yield make
