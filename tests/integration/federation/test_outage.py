"""A destination that is down: the sender queues, backs off, reports it on the admin API, and
delivers everything exactly once and in order when the destination comes back."""

from __future__ import annotations

from typing import Any

import nio
import pytest

from tests.integration.federation.cluster import Cluster, register_admin
from tests.nodes import ClientFactory
from tests.support.matrix import api, bodies, eventually, join, send_text, wait_for_membership

pytestmark = pytest.mark.slow
MESSAGES = 500


async def destination_status(admin: nio.AsyncClient, destination: str) -> dict[str, Any]:
    status, body = await api(admin, "GET", "/_rocketnode/admin/v1/federation")
    assert status == 200, body
    found = [d for d in body["destinations"] if d["destination"] == destination]
    assert len(found) == 1, body
    return dict(found[0])


async def test_outage_backlog_arrives_once_and_in_order(cluster: Cluster,
                                                        make_client: ClientFactory) -> None:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    admin = await register_admin(a, "root")
    try:
        created = await alice.room_create(preset=nio.RoomPreset.public_chat)
        assert isinstance(created, nio.RoomCreateResponse), created
        room_id = created.room_id
        await join(bob, room_id, via=[a.server_name])
        await wait_for_membership(alice, room_id, bob.user_id, "join")
        await send_text(alice, room_id, "before the outage")

        async def healthy() -> None:
            report = await destination_status(admin, b.server_name)
            assert report["state"] == "ok", report
            assert report["queue_depth"] == 0, report
            assert report["failing_since_ts"] is None, report
            assert report["last_success_ts"] is not None, report
        await eventually(healthy, what="b reported as ok")

        await b.stop()
        expected = [f"backlog {i:04d}" for i in range(MESSAGES)]
        for body in expected:
            await send_text(alice, room_id, body)

        async def backing_off() -> None:
            report = await destination_status(admin, b.server_name)
            assert report["state"] in ("backing_off", "failing"), report
            assert report["failing_since_ts"] is not None, report
            assert report["last_error"], report
            assert report["queue_depth"] >= 1, report
        await eventually(backing_off, timeout=10, what="b reported as failing")

        await b.start()

        async def all_arrived() -> list[str]:
            seen = await bodies(bob, room_id, limit=MESSAGES + 100, page=500)
            assert len(seen) >= MESSAGES + 1, len(seen)
            return seen
        seen = await eventually(all_arrived, timeout=60, interval=0.5,
                                what=f"{MESSAGES} messages on b")
        assert seen == ["before the outage", *expected]  # each exactly once, in order
        await eventually(healthy, what="b reported as ok again")
    finally:
        await admin.close()
