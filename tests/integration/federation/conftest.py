"""Fixtures for federation tests: a cluster of nodes on loopback and matrix-nio clients."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.integration.federation.cluster import Cluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[Cluster]:
    nodes = Cluster(tmp_path)
    try:
        yield nodes
    finally:
        await nodes.close()
