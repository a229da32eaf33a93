"""Wiring: config -> stores -> services -> HTTP apps. Owns every background task.

:class:`Node` is a running RocketNode. ``start()`` opens the database (creating it, the signing
key and the TLS certificate on first start), builds the services and starts the listeners;
``stop()`` stops accepting, finishes in-flight work and closes the database.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from rocketnode.client_api.rooms import RoomsApi
from rocketnode.client_api.send_events import SendEventsApi
from rocketnode.client_api.server_info import ServerInfoApi
from rocketnode.client_api.session import SessionApi
from rocketnode.config import Config, RateLimitConfig
from rocketnode.core.signing import SigningKey
from rocketnode.http.app_factory import Listener, build_app
from rocketnode.http.auth import Authenticator
from rocketnode.keys import load_or_create_signing_key, load_or_create_tls
from rocketnode.services.accounts import AccountService
from rocketnode.services.clock import Clock, SystemClock
from rocketnode.services.membership import MembershipService, NoFederation
from rocketnode.services.notifier import Notifier
from rocketnode.services.ratelimit import RateLimit, RateLimiter
from rocketnode.services.room_creation import RoomCreation
from rocketnode.services.room_state import RoomStates
from rocketnode.services.rooms import Identity, RoomService
from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite import open_sqlite

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Services:
    """The services of a running node (for the HTTP layer, the CLI and tests)."""

    stores: Stores
    notifier: Notifier
    rooms: RoomService
    accounts: AccountService
    membership: MembershipService
    creation: RoomCreation


class Node:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._listeners: list[Listener] = []
        self._services: Services | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.signing_key: SigningKey | None = None
        self.client_listener: Listener | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("Node is not started")
        return self._services

    @property
    def client_url(self) -> str:
        assert self.client_listener is not None
        return f"http://{self.config.client_listen.host}:{self.client_listener.port}"

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.signing_key = load_or_create_signing_key(config.path(config.signing_key_file))
        load_or_create_tls(config.path(config.tls_certificate_file),
                           config.path(config.tls_private_key_file), config.server_name)
        stores, _db = await open_sqlite(
            str(config.path(config.database_path)), readers=config.database_readers,
            synchronous=config.database_synchronous,
        )
        self._services = await self._build_services(stores, self.signing_key)
        client_app = build_app(self._client_routes(self._services), config.max_request_bytes)
        self.client_listener = Listener(
            client_app, config.client_listen.host, config.client_listen.port
        )
        await self.client_listener.start()
        self._listeners.append(self.client_listener)
        logger.info("RocketNode %s serving clients on %s", config.server_name, self.client_url)

    async def _build_services(self, stores: Stores, signing_key: SigningKey) -> Services:
        config, clock = self.config, self.clock
        notifier = Notifier(await stores.events.current_stream_ordering())
        states = RoomStates(stores.events, stores.state, stores.rooms)
        rooms = RoomService(Identity(config.server_name, signing_key), clock, stores.events,
                            stores.state, stores.rooms, states, notifier)
        accounts = AccountService(config.server_name, stores.accounts, clock)

        async def profile(user_id: str) -> dict[str, Any]:
            if not rooms.is_local(user_id):
                return {}
            try:
                return await accounts.profile(user_id)
            except Exception:
                return {}

        membership = MembershipService(rooms, stores.rooms, stores.state, profile, NoFederation())

        async def alias_taken(alias: str) -> bool:
            return await stores.rooms.get_alias(alias) is not None

        async def invite(sender: str, room_id: str, target: str, is_direct: bool) -> None:
            await membership.invite(sender, room_id, target, is_direct=is_direct)

        creation = RoomCreation(rooms, alias_taken, stores.rooms.create_alias, profile, invite)
        return Services(stores, notifier, rooms, accounts, membership, creation)

    def _limiter(self, limit: RateLimitConfig) -> RateLimiter:
        return RateLimiter(self.clock, RateLimit(limit.per_second, limit.burst),
                           enabled=self.config.rate_limits_enabled)

    def _client_routes(self, services: Services) -> list[web.RouteDef]:
        config = self.config
        auth = Authenticator(services.accounts)
        messages = self._limiter(config.rate_limit_messages)
        apis: list[Any] = [
            ServerInfoApi(auth, config.well_known_client),
            SessionApi(services.accounts, auth, self.clock, config.open_registration,
                       self._limiter(config.rate_limit_login),
                       self._limiter(config.rate_limit_registration)),
            RoomsApi(auth, services.creation, services.membership, services.stores.rooms,
                     messages, self._limiter(config.rate_limit_joins)),
            SendEventsApi(auth, services.rooms, messages),
        ]
        return [route for api in apis for route in api.routes()]

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests and writes, close the database."""
        for listener in reversed(self._listeners):
            await listener.stop()
        self._listeners.clear()
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._services is not None:
            await self._services.stores.close()
            self._services = None
        logger.info("RocketNode %s stopped", self.config.server_name)
