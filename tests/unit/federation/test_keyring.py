"""The keyring (server-server API "Retrieving server keys"): verifying key responses, fetching
each server's keys once, falling back to a notary whose signature is checked, keeping keys
across a restart, checking request signatures, and answering as a notary."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from rocketnode.core.errors import Errcode, MatrixError, RemoteServerError, SignatureError
from rocketnode.core.signing import SigningKey, sign_json, verify_json
from rocketnode.federation.keyring import (
    MAX_KEY_VALIDITY_MS,
    REFETCH_INTERVAL_S,
    Keyring,
    parse_key_response,
)
from rocketnode.federation.x_matrix import request_json
from rocketnode.storage.ports import Stores
from tests.unit.federation.fakes import (
    DAY_MS,
    NOW_MS,
    FakeClock,
    FakeFederationClient,
    key_response,
    server_key,
    sqlite_stores,
)

US, REMOTE, NOTARY = "us.test", "remote.test", "notary.test"
OUR_KEY = server_key("ours")
REMOTE_KEY, REMOTE_KEY_2, OLD_KEY = server_key("r1"), server_key("r2"), server_key("old")
NOTARY_KEY = server_key("notary")
KEY_PATH, QUERY_PATH = "/_matrix/key/v2/server", "/_matrix/key/v2/query"


@pytest.fixture
async def stores(tmp_path: Path) -> AsyncIterator[Stores]:
    async with sqlite_stores(tmp_path) as opened:
        yield opened


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client() -> FakeFederationClient:
    return FakeFederationClient(US)


def make_keyring(client: FakeFederationClient, stores: Stores, clock: FakeClock,
                 notaries: tuple[str, ...] = ()) -> Keyring:
    return Keyring(US, OUR_KEY, client, stores.federation, clock, notaries)  # type: ignore[arg-type]


@pytest.fixture
def keyring(client: FakeFederationClient, stores: Stores, clock: FakeClock) -> Keyring:
    return make_keyring(client, stores, clock, (NOTARY,))


def signed_request(key: SigningKey, origin: str = REMOTE) -> dict[str, Any]:
    return sign_json(request_json("GET", "/_matrix/federation/v1/version", origin, US, None),
                     origin, key)


# -- parse_key_response --------------------------------------------------------------------------

def test_parse_accepts_a_signed_response_and_caps_validity() -> None:
    soon = NOW_MS + DAY_MS
    keys = parse_key_response(REMOTE, key_response(REMOTE, [REMOTE_KEY], soon), NOW_MS)
    assert {k: (v.to_base64(), until) for k, (v, until) in keys.items()} == {
        REMOTE_KEY.key_id: (REMOTE_KEY.verify_key.to_base64(), soon)}

    far = NOW_MS + 365 * DAY_MS
    keys = parse_key_response(REMOTE, key_response(REMOTE, [REMOTE_KEY], far), NOW_MS)
    assert keys[REMOTE_KEY.key_id][1] == NOW_MS + 7 * DAY_MS == NOW_MS + MAX_KEY_VALIDITY_MS


def test_old_verify_keys_are_valid_until_they_expired() -> None:
    expired = NOW_MS - DAY_MS
    response = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS,
                            old={OLD_KEY.key_id: (OLD_KEY, expired),
                                 REMOTE_KEY.key_id: (REMOTE_KEY, expired)})
    keys = parse_key_response(REMOTE, response, NOW_MS)
    assert keys[OLD_KEY.key_id][1] == expired
    assert keys[OLD_KEY.key_id][0] == OLD_KEY.verify_key
    assert keys[REMOTE_KEY.key_id][1] == NOW_MS + DAY_MS  # the current listing wins


def _without(response: dict[str, Any], field: str) -> dict[str, Any]:
    return {k: v for k, v in response.items() if k != field}


_GOOD = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS)


@pytest.mark.parametrize("response", [
    key_response("other.test", [REMOTE_KEY], NOW_MS + DAY_MS),  # another server's keys
    _without(_GOOD, "server_name"),
    _without(_GOOD, "signatures"),  # unsigned
    key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS, signers=[REMOTE_KEY_2]),  # wrong key
    key_response(REMOTE, [REMOTE_KEY, REMOTE_KEY_2], NOW_MS + DAY_MS, signers=[REMOTE_KEY]),
    {**_GOOD, "valid_until_ts": NOW_MS + 365 * DAY_MS},  # altered after signing
    _without(_GOOD, "valid_until_ts"),
    sign_json(_without(_without(_GOOD, "signatures"), "valid_until_ts"), REMOTE, REMOTE_KEY),
    sign_json({**_without(_GOOD, "signatures"), "valid_until_ts": "soon"}, REMOTE, REMOTE_KEY),
    key_response(REMOTE, [], NOW_MS + DAY_MS, signers=[REMOTE_KEY]),  # no verify keys
    [_GOOD],
])
def test_parse_refuses(response: Any) -> None:
    with pytest.raises(SignatureError):
        parse_key_response(REMOTE, response, NOW_MS)


# -- fetching ---------------------------------------------------------------------------------

async def test_keys_are_fetched_once_per_server(keyring: Keyring, client: FakeFederationClient,
                                                clock: FakeClock) -> None:
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS))
    await asyncio.gather(*(keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
                           for _ in range(5)))
    assert keyring.lookup(REMOTE, REMOTE_KEY.key_id) == (REMOTE_KEY.verify_key, NOW_MS + DAY_MS)
    assert [(s.method, s.path, s.signed) for s in client.sent] == [("GET", KEY_PATH, False)]

    # a key the server does not list is asked for at most once per refetch interval
    await keyring.ensure_keys([(REMOTE, "ed25519:unknown")])
    assert len(client.sent) == 1
    clock.advance(REFETCH_INTERVAL_S + 1)
    await keyring.ensure_keys([(REMOTE, "ed25519:unknown")])
    assert len(client.sent) == 2
    await keyring.ensure_keys([(REMOTE, "ed25519:unknown")])
    assert len(client.sent) == 2
    await keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id), (US, OUR_KEY.key_id)])
    assert len(client.sent) == 2
    assert keyring.lookup(REMOTE, "ed25519:unknown") is None


async def test_notary_fallback(keyring: Keyring, client: FakeFederationClient) -> None:
    response = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS)
    client.answer("GET", NOTARY, KEY_PATH, key_response(NOTARY, [NOTARY_KEY], NOW_MS + DAY_MS))
    client.answer("POST", NOTARY, QUERY_PATH,
                  {"server_keys": [sign_json(response, NOTARY, NOTARY_KEY)]})
    await keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
    assert keyring.lookup(REMOTE, REMOTE_KEY.key_id) == (REMOTE_KEY.verify_key, NOW_MS + DAY_MS)
    assert [(s.method, s.destination, s.path) for s in client.sent] == [
        ("GET", REMOTE, KEY_PATH), ("GET", NOTARY, KEY_PATH), ("POST", NOTARY, QUERY_PATH)]
    assert client.sent[-1].body == {"server_keys": {REMOTE: {}}}


@pytest.mark.parametrize("notary_answer", [
    # not countersigned by the notary
    {"server_keys": [key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS)]},
    # countersigned with a key that is not the notary's
    {"server_keys": [sign_json(key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS), NOTARY,
                               server_key("impostor"))]},
    # signed by the notary, but not by the server itself
    {"server_keys": [sign_json(key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS,
                                            signers=[]), NOTARY, NOTARY_KEY)]},
    # for another server
    {"server_keys": [sign_json(key_response("x.test", [REMOTE_KEY], NOW_MS + DAY_MS),
                               NOTARY, NOTARY_KEY)]},
    {"server_keys": "nonsense"},
    ["nonsense"],
])
async def test_notary_answers_not_vouched_for_are_refused(
        keyring: Keyring, client: FakeFederationClient, stores: Stores,
        notary_answer: Any) -> None:
    client.answer("GET", NOTARY, KEY_PATH, key_response(NOTARY, [NOTARY_KEY], NOW_MS + DAY_MS))
    client.answer("POST", NOTARY, QUERY_PATH, notary_answer)
    await keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
    assert keyring.lookup(REMOTE, REMOTE_KEY.key_id) is None
    assert await stores.federation.get_server_keys(REMOTE) == {}
    assert ("POST", NOTARY) in [(s.method, s.destination) for s in client.sent]


async def test_notary_whose_keys_are_unknown_is_not_trusted(
        keyring: Keyring, client: FakeFederationClient) -> None:
    """The notary's own key server is down: its answer cannot be checked, and looking for
    its keys does not turn back to the notary itself (that used to wait for ever)."""
    client.answer("POST", NOTARY, QUERY_PATH, {"server_keys": [
        sign_json(key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS), NOTARY, NOTARY_KEY)]})
    await asyncio.wait_for(keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)]), 5)
    assert keyring.lookup(REMOTE, REMOTE_KEY.key_id) is None
    assert [(s.method, s.destination) for s in client.sent] == [
        ("GET", REMOTE), ("GET", NOTARY), ("POST", NOTARY)]


async def test_unreachable_notaries_never_wait_for_each_other(
        client: FakeFederationClient, stores: Stores, clock: FakeClock) -> None:
    """Two notaries whose key servers are down, and keys wanted from both of them and from a
    third server at once: every lookup ends (unsuccessfully)."""
    other = "notary2.test"
    keyring = make_keyring(client, stores, clock, (NOTARY, other))
    wanted = [NOTARY, other, REMOTE, NOTARY, other]
    await asyncio.wait_for(asyncio.gather(*(
        keyring.ensure_keys([(server, "ed25519:k")]) for server in wanted)), 5)
    assert all(keyring.lookup(server, "ed25519:k") is None for server in wanted)
    assert {s.destination for s in client.sent} == {NOTARY, other, REMOTE}


async def test_keys_survive_a_restart_without_network(
        client: FakeFederationClient, stores: Stores, clock: FakeClock) -> None:
    response = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS,
                            old={OLD_KEY.key_id: (OLD_KEY, NOW_MS - DAY_MS)})
    client.answer("GET", REMOTE, KEY_PATH, response)
    await make_keyring(client, stores, clock).ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
    assert len(client.sent) == 1

    offline = FakeFederationClient(US)
    restarted = make_keyring(offline, stores, clock)
    assert restarted.lookup(REMOTE, REMOTE_KEY.key_id) is None
    await restarted.ensure_keys([(REMOTE, REMOTE_KEY.key_id), (REMOTE, OLD_KEY.key_id)])
    assert offline.sent == []
    assert restarted.lookup(REMOTE, REMOTE_KEY.key_id) == (REMOTE_KEY.verify_key,
                                                           NOW_MS + DAY_MS)
    assert restarted.lookup(REMOTE, OLD_KEY.key_id) == (OLD_KEY.verify_key, NOW_MS - DAY_MS)
    await restarted.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                             signed_request(REMOTE_KEY))
    assert offline.sent == []


# -- request signatures ----------------------------------------------------------------------

async def test_request_signature_checks(keyring: Keyring, client: FakeFederationClient
                                        ) -> None:
    client.answer("GET", REMOTE, KEY_PATH, key_response(
        REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS, old={OLD_KEY.key_id: (OLD_KEY, NOW_MS - 1)}))
    await keyring.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                           signed_request(REMOTE_KEY))

    async def refused(key_id: str, signed: dict[str, Any]) -> MatrixError:
        with pytest.raises(MatrixError) as caught:
            await keyring.verify_request_signature(REMOTE, key_id, signed)
        assert (caught.value.errcode, caught.value.status) == (Errcode.UNAUTHORIZED, 401)
        return caught.value

    # signed with a key the server never listed
    stranger = server_key("stranger")
    assert "Unknown key" in (await refused(stranger.key_id, signed_request(stranger))).message
    # an old key signs events, not requests
    assert "expired" in (await refused(OLD_KEY.key_id, signed_request(OLD_KEY))).message
    # the listed key, but a signature over something else
    tampered = {**signed_request(REMOTE_KEY), "uri": "/_matrix/federation/v1/other"}
    assert "signature" in (await refused(REMOTE_KEY.key_id, tampered)).message
    # no signature at all
    unsigned = request_json("GET", "/x", REMOTE, US, None)
    await refused(REMOTE_KEY.key_id, unsigned)


async def test_request_signed_with_an_expired_key_is_refused(
        keyring: Keyring, client: FakeFederationClient, clock: FakeClock) -> None:
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], NOW_MS + 1000))
    await keyring.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                           signed_request(REMOTE_KEY))
    clock.advance(REFETCH_INTERVAL_S + 1)
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY_2], NOW_MS + DAY_MS))
    with pytest.raises(MatrixError) as caught:
        await keyring.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                               signed_request(REMOTE_KEY))
    assert caught.value.errcode is Errcode.UNAUTHORIZED
    assert "expired" in caught.value.message


async def test_an_expired_key_is_fetched_again(
        client: FakeFederationClient, stores: Stores, clock: FakeClock) -> None:
    """Once the validity of a cached key has passed, the key is fetched again (here it is
    still listed, with a new validity) rather than refused for ever — also after a restart,
    when the expired key comes from storage."""
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], NOW_MS + 1000))
    keyring = make_keyring(client, stores, clock)
    await keyring.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                           signed_request(REMOTE_KEY))
    clock.advance(3600)
    renewed = clock.now_ms() + DAY_MS
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], renewed))
    await keyring.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                           signed_request(REMOTE_KEY))
    assert keyring.lookup(REMOTE, REMOTE_KEY.key_id) == (REMOTE_KEY.verify_key, renewed)
    assert len(client.sent) == 2

    clock.advance(2 * 24 * 3600)
    again = clock.now_ms() + DAY_MS
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], again))
    restarted = make_keyring(client, stores, clock)
    await restarted.verify_request_signature(REMOTE, REMOTE_KEY.key_id,
                                             signed_request(REMOTE_KEY))
    assert restarted.lookup(REMOTE, REMOTE_KEY.key_id) == (REMOTE_KEY.verify_key, again)
    assert len(client.sent) == 3


# -- notary ----------------------------------------------------------------------------------

async def test_notary_serves_our_own_keys(keyring: Keyring, client: FakeFederationClient
                                          ) -> None:
    answer = await keyring.notary_response(US, 0)
    assert answer is not None
    assert answer == keyring.own_key_response()
    keys = parse_key_response(US, answer, NOW_MS)
    assert keys == {OUR_KEY.key_id: (OUR_KEY.verify_key, NOW_MS + DAY_MS)}
    assert client.sent == []


async def test_notary_serves_cached_keys_countersigned(
        keyring: Keyring, client: FakeFederationClient) -> None:
    response = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS)
    client.answer("GET", REMOTE, KEY_PATH, response)
    await keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
    client.answer("GET", REMOTE, KEY_PATH, RemoteServerError(REMOTE, "gone"))  # cache only

    answer = await keyring.notary_response(REMOTE, NOW_MS)
    assert answer is not None
    verify_json(answer, US, OUR_KEY.verify_key)
    verify_json(answer, REMOTE, REMOTE_KEY.verify_key)
    assert {k: v for k, v in answer.items() if k != "signatures"} == {
        k: v for k, v in response.items() if k != "signatures"}
    assert len(client.sent) == 1


async def test_notary_refetches_stale_keys_and_knows_nothing_of_unreachable_servers(
        keyring: Keyring, client: FakeFederationClient) -> None:
    client.answer("GET", REMOTE, KEY_PATH, key_response(REMOTE, [REMOTE_KEY], NOW_MS + 1000))
    await keyring.ensure_keys([(REMOTE, REMOTE_KEY.key_id)])
    fresher = key_response(REMOTE, [REMOTE_KEY], NOW_MS + DAY_MS)
    client.answer("GET", REMOTE, KEY_PATH, fresher)
    answer = await keyring.notary_response(REMOTE, NOW_MS + 5000)
    assert answer is not None and answer["valid_until_ts"] == NOW_MS + DAY_MS
    assert len(client.sent_to(REMOTE)) == 2

    assert await asyncio.wait_for(keyring.notary_response("unreachable.test", 0), 5) is None
