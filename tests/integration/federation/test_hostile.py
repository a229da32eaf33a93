"""Hostile input against a node's federation API: forged, misattributed, unauthorised,
oversized and malformed PDUs and transactions, and unsigned or mis-signed requests. The node
drops or rejects each, stores nothing a client could see, and keeps serving.

Requests come from a second real node (its identity signs them through its federation client)
or, for the unsigned and mis-signed ones, from a bare HTTPS client.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import aiohttp
import nio
import pytest

from rocketnode.core.auth_rules import auth_types_for_event
from rocketnode.core.canonical_json import encode_json
from rocketnode.core.errors import RemoteServerError
from rocketnode.core.pdu import compute_content_hash, compute_event_id
from rocketnode.core.redaction import redact
from rocketnode.core.room_versions import RoomVersion
from rocketnode.core.signing import SigningKey, encode_base64, sign_json
from rocketnode.federation.client import FederationClient, path_segment
from rocketnode.federation.x_matrix import authorization_header
from tests.integration.federation.cluster import Cluster, NodeHandle
from tests.nodes import ClientFactory
from tests.support.matrix import (
    bodies,
    eventually,
    join,
    membership_of,
    send_text,
    wait_for_body,
    wait_for_membership,
)

pytestmark = pytest.mark.slow
_txn_ids = itertools.count()


@dataclass
class Target:
    """Node a (the target, alice's room) and node b (the sender, bob is in the room)."""

    a: NodeHandle
    b: NodeHandle
    alice: nio.AsyncClient
    bob: nio.AsyncClient
    room_id: str
    version: RoomVersion

    @property
    def b_key(self) -> SigningKey:
        assert self.b.node.signing_key is not None
        return self.b.node.signing_key

    async def pdu_data(self, sender: str, event_type: str, content: dict[str, Any],
                       state_key: str | None = None) -> dict[str, Any]:
        """An unsigned PDU on top of a's current view of the room."""
        snapshot = await self.a.node.services.rooms.states.snapshot(self.room_id)
        assert snapshot is not None
        keys = auth_types_for_event(snapshot.room_version, event_type, sender, state_key,
                                    content)
        data: dict[str, Any] = {
            "room_id": self.room_id, "type": event_type, "sender": sender, "content": content,
            "origin_server_ts": self.a.node.clock.now_ms(), "depth": snapshot.depth + 1,
            "prev_events": list(snapshot.extremities),
            "auth_events": sorted(snapshot.state[k] for k in keys if k in snapshot.state),
        }
        if state_key is not None:
            data["state_key"] = state_key
        return data

    def sign(self, data: dict[str, Any], key: SigningKey | None = None) -> dict[str, Any]:
        """``data`` hashed and signed as b (or with ``key`` under b's name), unchecked."""
        body = dict(data)
        body["hashes"] = {"sha256": encode_base64(compute_content_hash(body))}
        signed = sign_json(redact(self.version, body), self.b.server_name, key or self.b_key)
        body["signatures"] = signed["signatures"]
        return body

    def event_id(self, pdu: dict[str, Any]) -> str:
        return compute_event_id(self.version, pdu)

    @property
    def b_client(self) -> FederationClient:
        assert self.b.node.federation is not None
        return self.b.node.federation.client

    async def send_transaction(self, body: Any, txn_id: str | None = None) -> Any:
        """PUT /send/{txnId} to a, signed by b; the decoded answer."""
        txn_id = txn_id or f"hostile{next(_txn_ids)}"
        return await self.b_client.put(
            self.a.server_name, f"/_matrix/federation/v1/send/{txn_id}", body)

    async def send_pdus(self, *pdus: dict[str, Any], edus: list[dict[str, Any]] | None = None,
                        txn_id: str | None = None) -> dict[str, Any]:
        answer = await self.send_transaction({
            "origin": self.b.server_name, "origin_server_ts": self.a.node.clock.now_ms(),
            "pdus": list(pdus), "edus": edus or []}, txn_id)
        assert isinstance(answer, dict), answer
        return dict(answer.get("pdus", {}))

    async def stored(self, event_id: str) -> Any:
        found = await self.a.node.services.stores.events.get_events([event_id])
        return found.get(event_id)

    async def position(self) -> int:
        return await self.a.node.services.stores.events.current_stream_ordering()

    async def still_serving(self, note: str) -> None:
        """a still takes part in federation both ways and answers its clients."""
        await send_text(self.alice, self.room_id, f"a after {note}")
        await wait_for_body(self.bob, self.room_id, f"a after {note}")
        await send_text(self.bob, self.room_id, f"b after {note}")
        await wait_for_body(self.alice, self.room_id, f"b after {note}")


@pytest.fixture
async def target(cluster: Cluster, make_client: ClientFactory) -> Target:
    a, b = await cluster.start("a"), await cluster.start("b")
    alice = await make_client(a.node, "alice")
    bob = await make_client(b.node, "bob")
    created = await alice.room_create(preset=nio.RoomPreset.public_chat)
    assert isinstance(created, nio.RoomCreateResponse), created
    await join(bob, created.room_id, via=[a.server_name])
    await wait_for_membership(alice, created.room_id, bob.user_id, "join")
    snapshot = await a.node.services.rooms.states.snapshot(created.room_id)
    assert snapshot is not None
    return Target(a, b, alice, bob, created.room_id, snapshot.room_version)


def text(body: str) -> dict[str, Any]:
    return {"msgtype": "m.text", "body": body}


async def test_forged_signature_is_dropped(target: Target) -> None:
    t = target
    data = await t.pdu_data(t.bob.user_id, "m.room.message", text("forged"))
    impostor = SigningKey.generate(t.b_key.version)  # b's key ID, another key
    forged = t.sign(data, impostor)
    await t.send_pdus(forged)
    event_id = t.event_id(forged)
    assert await t.stored(event_id) is None
    await t.still_serving("a forged signature")
    assert "forged" not in await bodies(t.alice, t.room_id)
    # the same event with b's real signature is taken: only the signature was wrong
    genuine = t.sign(data)
    assert t.event_id(genuine) == event_id
    assert await t.send_pdus(genuine) == {event_id: {}}
    assert await t.stored(event_id) is not None


async def test_origin_other_than_the_senders_server_is_dropped(target: Target) -> None:
    t = target
    data = await t.pdu_data(t.bob.user_id, "m.room.message", text("misattributed"))
    data["origin"] = t.a.server_name  # claims to come from a, sent and signed by b
    pdu = t.sign(data)
    await t.send_pdus(pdu)
    assert await t.stored(t.event_id(pdu)) is None
    await t.still_serving("a misattributed PDU")
    assert "misattributed" not in await bodies(t.alice, t.room_id)
    # with b's own name as origin the same event is taken
    honest = t.sign({**data, "origin": t.b.server_name})
    assert await t.send_pdus(honest) == {t.event_id(honest): {}}
    await wait_for_body(t.alice, t.room_id, "misattributed")


async def test_events_failing_auth_are_rejected_and_hidden(target: Target) -> None:
    t = target
    mallory = f"@mallory:{t.b.server_name}"
    outsider = t.sign(await t.pdu_data(mallory, "m.room.message", text("not a member")))
    results = await t.send_pdus(outsider)
    assert "error" in results[t.event_id(outsider)], results
    stored = await t.stored(t.event_id(outsider))
    assert stored is None or stored.rejected is not None

    ban = t.sign(await t.pdu_data(t.bob.user_id, "m.room.member",
                                  {"membership": "ban"}, state_key=t.alice.user_id))
    results = await t.send_pdus(ban)
    assert "error" in results[t.event_id(ban)], results
    stored = await t.stored(t.event_id(ban))
    assert stored is None or stored.rejected is not None

    await t.still_serving("events failing auth")
    assert "not a member" not in await bodies(t.alice, t.room_id)
    assert await membership_of(t.alice, t.room_id, t.alice.user_id) == "join"
    assert await membership_of(t.alice, t.room_id, mallory) is None


async def test_oversized_pdu_is_dropped(target: Target) -> None:
    t = target
    data = await t.pdu_data(t.bob.user_id, "m.room.message", text("x" * 66_000))
    pdu = t.sign(data)
    assert len(encode_json(pdu)) > 65_536
    await t.send_pdus(pdu)
    assert await t.stored(t.event_id(pdu)) is None
    await t.still_serving("an oversized PDU")


@pytest.mark.parametrize("body", [
    ["not", "an", "object"],
    {"origin": "x", "pdus": {"not": "a list"}},
    {"pdus": [], "edus": "not a list"},
    {"pdus": [{"type": "m.room.message"}] * 51},
], ids=["not-an-object", "pdus-not-a-list", "edus-not-a-list", "51-pdus"])
async def test_malformed_transaction_is_refused(target: Target, body: Any) -> None:
    t = target
    if isinstance(body, dict) and body.get("origin") == "x":
        body = {**body, "origin": t.b.server_name}
    if isinstance(body, dict) and len(body.get("pdus", [])) == 51:
        valid = t.sign(await t.pdu_data(t.bob.user_id, "m.room.message", text("one of 51")))
        body = {"pdus": [valid] * 51}
    before = await t.position()
    with pytest.raises(RemoteServerError) as refused:
        await t.send_transaction(body)
    assert refused.value.remote_status == 400, refused.value
    assert refused.value.remote_errcode == "M_BAD_JSON", refused.value
    assert await t.position() == before
    await t.still_serving("a malformed transaction")
    assert "one of 51" not in await bodies(t.alice, t.room_id)


async def raw_put(handle: NodeHandle, path: str, body: Any,
                  authorization: str | None) -> tuple[int, Any]:
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    url = f"https://127.0.0.1:{handle.config.federation_listen.port}{path}"
    timeout = aiohttp.ClientTimeout(total=20)
    async with aiohttp.ClientSession(timeout=timeout) as session, session.put(
            url, data=encode_json(body), headers=headers, ssl=False) as response:
        return response.status, await response.json(content_type=None)


async def test_unsigned_and_mis_signed_requests_are_unauthorized(target: Target) -> None:
    t = target
    message = t.sign(await t.pdu_data(t.bob.user_id, "m.room.message", text("unsigned")))
    body = {"origin": t.b.server_name, "origin_server_ts": 1, "pdus": [message]}
    path = "/_matrix/federation/v1/send/raw1"
    impostor = SigningKey.generate(t.b_key.version)
    own = t.b_key
    headers: dict[str, str | None] = {
        "no header": None,
        "not X-Matrix": "Bearer abc",
        "malformed": 'X-Matrix origin="127.0.0.1:1",key=',
        "wrong key": authorization_header("PUT", path, t.b.server_name, t.a.server_name, body,
                                          impostor),
        "other body": authorization_header("PUT", path, t.b.server_name, t.a.server_name,
                                           {**body, "pdus": []}, own),
        "other destination": authorization_header("PUT", path, t.b.server_name,
                                                  "127.0.0.1:1", body, own),
        "other path": authorization_header("PUT", path + "x", t.b.server_name,
                                           t.a.server_name, body, own),
    }
    before = await t.position()
    for what, header in headers.items():
        status, answer = await raw_put(t.a, path, body, header)
        assert (status, answer.get("errcode")) == (401, "M_UNAUTHORIZED"), (what, answer)
    assert await t.position() == before
    assert await t.stored(t.event_id(message)) is None
    # the same request, properly signed, is taken: the refusals were about the signatures
    status, answer = await raw_put(t.a, path, body, authorization_header(
        "PUT", path, t.b.server_name, t.a.server_name, body, own))
    assert status == 200, answer
    await wait_for_body(t.alice, t.room_id, "unsigned")
    await t.still_serving("unsigned requests")


async def test_unknown_prev_events_the_origin_cannot_supply(target: Target) -> None:
    t = target
    data = await t.pdu_data(t.bob.user_id, "m.room.message", text("from nowhere"))
    data["prev_events"] = ["$" + "A" * 43]  # well formed, known to no one
    pdu = t.sign(data)
    results = await t.send_pdus(pdu)
    assert "error" in results[t.event_id(pdu)], results
    assert await t.stored(t.event_id(pdu)) is None
    await t.still_serving("a PDU with unknown prev_events")
    assert "from nowhere" not in await bodies(t.alice, t.room_id)


async def test_replayed_transaction_is_taken_once(target: Target) -> None:
    t = target
    pdu = t.sign(await t.pdu_data(t.bob.user_id, "m.room.message", text("only once")))
    first = await t.send_pdus(pdu, txn_id="replayed")
    again = await t.send_pdus(pdu, txn_id="replayed")
    assert first == again == {t.event_id(pdu): {}}
    await wait_for_body(t.alice, t.room_id, "only once")
    assert (await bodies(t.alice, t.room_id)).count("only once") == 1


async def ephemeral_users(client: nio.AsyncClient, room_id: str) -> tuple[list[str], list[str]]:
    """Who a's client sees typing, and who it sees having read something, in the room."""
    synced = await client.sync(timeout=0, full_state=True)
    assert isinstance(synced, nio.SyncResponse), synced
    room = synced.rooms.join.get(room_id)
    assert room is not None, synced.rooms.join
    typing = sorted(u for e in room.ephemeral if isinstance(e, nio.TypingNoticeEvent)
                    for u in e.users)
    readers = sorted(r.user_id for e in room.ephemeral if isinstance(e, nio.ReceiptEvent)
                     for r in e.receipts)
    return typing, readers


async def test_edus_for_users_of_other_servers_are_ignored(target: Target) -> None:
    t = target
    stranger = f"@mallory:{t.b.server_name}"  # on b, but not in the room
    event_id = await send_text(t.alice, t.room_id, "something to read")
    await wait_for_body(t.bob, t.room_id, "something to read")

    def typing(user_id: str) -> dict[str, Any]:
        return {"edu_type": "m.typing", "content": {"room_id": t.room_id, "user_id": user_id,
                                                    "typing": True}}

    def receipt(user_id: str) -> dict[str, Any]:
        return {"edu_type": "m.receipt", "content": {t.room_id: {"m.read": {user_id: {
            "event_ids": [event_id], "data": {"ts": 1}}}}}}

    spoofed: list[Any] = [typing(t.alice.user_id), typing(stranger), receipt(t.alice.user_id),
                          receipt(stranger), {"edu_type": "m.typing", "content": "no object"},
                          ["not an edu"]]
    await t.send_pdus(edus=spoofed)
    await t.send_pdus(edus=[typing(t.bob.user_id), receipt(t.bob.user_id)])

    async def only_bob() -> None:
        assert await ephemeral_users(t.alice, t.room_id) == ([t.bob.user_id], [t.bob.user_id])
    await eventually(only_bob, what="bob's typing notice and receipt, and only those")
    await t.still_serving("spoofed EDUs")


async def test_servers_outside_the_room_may_not_read_it(cluster: Cluster, target: Target
                                                        ) -> None:
    t = target
    c = await cluster.start("c")
    assert c.node.federation is not None
    outsider = c.node.federation.client
    room = path_segment(t.room_id)
    snapshot = await t.a.node.services.rooms.states.snapshot(t.room_id)
    assert snapshot is not None
    event_id = snapshot.extremities[0]
    reads = [
        ("GET", f"/_matrix/federation/v1/event/{path_segment(event_id)}", None, None),
        ("GET", f"/_matrix/federation/v1/state_ids/{room}", {"event_id": event_id}, None),
        ("GET", f"/_matrix/federation/v1/state/{room}", {"event_id": event_id}, None),
        ("GET", f"/_matrix/federation/v1/event_auth/{room}/{path_segment(event_id)}", None,
         None),
        ("GET", f"/_matrix/federation/v1/backfill/{room}", {"v": event_id, "limit": "10"},
         None),
        ("POST", f"/_matrix/federation/v1/get_missing_events/{room}", None,
         {"earliest_events": [], "latest_events": [event_id], "limit": 10}),
    ]
    for method, path, query, body in reads:
        with pytest.raises(RemoteServerError) as refused:
            await outsider.request(method, t.a.server_name, path, query=query, body=body)
        assert refused.value.remote_status == 403, (path, refused.value)
        # b, which is in the room, may read the same
        assert await t.b_client.request(method, t.a.server_name, path, query=query, body=body)


async def test_membership_handshakes_only_for_the_origins_own_users(target: Target) -> None:
    t = target
    room = path_segment(t.room_id)
    with pytest.raises(RemoteServerError) as refused:
        await t.b_client.get(t.a.server_name, "/_matrix/federation/v1/make_join/"
                             f"{room}/{path_segment(t.alice.user_id)}", {"ver": ["12"]})
    assert refused.value.remote_status == 403, refused.value

    # a join event of a user of a, signed and sent by b
    join_data = await t.pdu_data(f"@eve:{t.a.server_name}", "m.room.member",
                                 {"membership": "join"}, state_key=f"@eve:{t.a.server_name}")
    forged_join = t.sign(join_data)
    with pytest.raises(RemoteServerError) as refused:
        await t.b_client.put(t.a.server_name, "/_matrix/federation/v2/send_join/"
                             f"{room}/{path_segment(t.event_id(forged_join))}", forged_join)
    assert refused.value.remote_status in (400, 403), refused.value
    assert await t.stored(t.event_id(forged_join)) is None
    assert await membership_of(t.alice, t.room_id, f"@eve:{t.a.server_name}") is None
    await t.still_serving("forged handshakes")
