"""Wiring: config -> stores -> services -> HTTP apps. Owns every background task.

:class:`Node` is a running RocketNode. ``start()`` opens the database (creating it, the signing
key and the TLS certificate on first start), builds the services and starts the listeners;
``stop()`` stops accepting, finishes in-flight work and closes the database.
"""

from __future__ import annotations

import asyncio
import fcntl
import logging
import ssl
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from rocketnode.client_api.account_data import AccountDataApi
from rocketnode.client_api.admin import AdminApi
from rocketnode.client_api.auth import Authenticator
from rocketnode.client_api.directory import DirectoryApi
from rocketnode.client_api.ephemeral import EphemeralApi
from rocketnode.client_api.presence import PresenceApi
from rocketnode.client_api.profile import ProfileApi
from rocketnode.client_api.public_rooms import PublicRoomsApi
from rocketnode.client_api.push_rules import PushRulesApi
from rocketnode.client_api.room_reads import RoomReadsApi
from rocketnode.client_api.rooms import RoomsApi
from rocketnode.client_api.send_events import SendEventsApi
from rocketnode.client_api.server_info import ServerInfoApi
from rocketnode.client_api.session import SessionApi
from rocketnode.client_api.sync import SyncApi
from rocketnode.config import Config, RateLimitConfig
from rocketnode.core.signing import SigningKey
from rocketnode.federation.backfill import Backfiller
from rocketnode.federation.client import FederationClient, resolve_srv
from rocketnode.federation.discovery import ServerDiscovery
from rocketnode.federation.edus import EduRelay
from rocketnode.federation.event_intake import EventIntake
from rocketnode.federation.handshakes import Handshakes
from rocketnode.federation.inbound import TransactionHandler
from rocketnode.federation.keyring import Keyring
from rocketnode.federation.membership_server import MembershipServer
from rocketnode.federation.queries import LocalQueries, RemoteQueries
from rocketnode.federation.routes import FederationApi
from rocketnode.federation.sender import Backoff, FederationSender
from rocketnode.federation.serving import RoomServing
from rocketnode.http.app_factory import Listener, build_app
from rocketnode.keys import load_or_create_signing_key, load_or_create_tls
from rocketnode.services.account_data import AccountDataService
from rocketnode.services.accounts import AccountService
from rocketnode.services.clock import Clock, SystemClock
from rocketnode.services.directory import DirectoryService
from rocketnode.services.membership import MembershipService, NoFederation
from rocketnode.services.notifier import Notifier
from rocketnode.services.presence import PresenceService
from rocketnode.services.profile import NoRemoteProfiles, ProfileService
from rocketnode.services.public_rooms import NoRemotePublicRooms, PublicRoomsService
from rocketnode.services.push_rules import PushRulesService
from rocketnode.services.ratelimit import RateLimit, RateLimiter
from rocketnode.services.receipts import ReceiptService
from rocketnode.services.room_access import RoomAccess
from rocketnode.services.room_creation import RoomCreation
from rocketnode.services.room_messages import RoomMessages
from rocketnode.services.room_reads import RoomReads
from rocketnode.services.room_state import RoomStates
from rocketnode.services.rooms import Identity, RoomService
from rocketnode.services.sync import SyncService
from rocketnode.services.sync_rooms import SyncRooms
from rocketnode.services.typing import TypingService
from rocketnode.services.user_filters import UserFilters
from rocketnode.storage.ports import Stores
from rocketnode.storage.sqlite import open_sqlite
from rocketnode.web.serving import WebClient, load_assets

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class Federation:
    """The federation components of a running node."""

    client: FederationClient
    keyring: Keyring
    sender: FederationSender
    intake: EventIntake
    handshakes: Handshakes
    remote_queries: RemoteQueries
    backfiller: Backfiller

LOCK_FILE = "rocketnode.lock"


class DataDirInUse(OSError):
    """Another running node holds the data directory (two writers would corrupt streams)."""


def lock_data_dir(data_dir: Path) -> IO[bytes]:
    """Take the data directory's lock for as long as the returned file stays open."""
    handle = (data_dir / LOCK_FILE).open("wb")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        raise DataDirInUse(f"{data_dir} is in use by another running RocketNode") from exc
    return handle


@dataclass(slots=True)
class Services:
    """The services of a running node (for the HTTP layer, the CLI and tests)."""

    stores: Stores
    notifier: Notifier
    rooms: RoomService
    accounts: AccountService
    membership: MembershipService
    creation: RoomCreation
    profiles: ProfileService
    directory: DirectoryService
    public_rooms: PublicRoomsService
    push_rules: PushRulesService
    presence: PresenceService
    typing: TypingService
    receipts: ReceiptService
    account_data: AccountDataService
    filters: UserFilters
    sync: SyncService


class Node:
    def __init__(self, config: Config, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._listeners: list[Listener] = []
        self._services: Services | None = None
        self._stores: Stores | None = None
        self._data_dir_lock: IO[bytes] | None = None
        self._tasks: list[asyncio.Task[Any]] = []
        self.signing_key: SigningKey | None = None
        self.client_listener: Listener | None = None
        self.federation_listener: Listener | None = None
        self.federation: Federation | None = None
        self._edu_relay: EduRelay | None = None
        self._transactions: TransactionHandler | None = None
        self._hashing: ThreadPoolExecutor | None = None

    @property
    def services(self) -> Services:
        if self._services is None:
            raise RuntimeError("Node is not started")
        return self._services

    @property
    def client_url(self) -> str:
        assert self.client_listener is not None
        return f"http://{self.config.client_listen.host}:{self.client_listener.port}"

    @property
    def federation_port(self) -> int:
        assert self.federation_listener is not None
        return self.federation_listener.port

    async def start(self) -> None:
        config = self.config
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self._data_dir_lock = lock_data_dir(config.data_dir)
        try:
            await self._start()
        except BaseException:  # e.g. the address is in use: leave nothing open behind
            await self.stop()
            raise
        logger.info("RocketNode %s serving clients on %s", config.server_name, self.client_url)

    async def _start(self) -> None:
        config = self.config
        self.signing_key = load_or_create_signing_key(config.path(config.signing_key_file))
        load_or_create_tls(config.path(config.tls_certificate_file),
                           config.path(config.tls_private_key_file), config.server_name)
        self._stores, _db = await open_sqlite(
            str(config.path(config.database_path)), readers=config.database_readers,
            synchronous=config.database_synchronous,
        )
        self._hashing = ThreadPoolExecutor(max_workers=1, thread_name_prefix="password-hashing")
        rooms = await self._build_rooms(self._stores, self.signing_key)
        self.federation = self._build_federation(self._stores, self.signing_key, rooms)
        self._services = await self._build_services(self._stores, rooms, self.federation)
        self._tasks.append(asyncio.create_task(self._services.typing.run_expiry()))
        if config.federation_enabled:
            await self._start_federation(self._services, self.federation)
        client_app = build_app(self._client_routes(self._services), config.max_request_bytes)
        self.client_listener = Listener(
            client_app, config.client_listen.host, config.client_listen.port
        )
        await self.client_listener.start()
        self._listeners.append(self.client_listener)

    async def _build_rooms(self, stores: Stores, signing_key: SigningKey) -> RoomService:
        notifier = Notifier(await stores.events.current_stream_ordering())
        states = RoomStates(stores.events, stores.state, stores.rooms)
        return RoomService(Identity(self.config.server_name, signing_key), self.clock,
                           stores.events, stores.state, stores.rooms, states, notifier)

    def _build_federation(self, stores: Stores, signing_key: SigningKey,
                          rooms: RoomService) -> Federation:
        config, clock = self.config, self.clock
        client = FederationClient(config.server_name, signing_key, config.federation_verify_tls,
                                  config.federation_domain_whitelist,
                                  config.federation_loopback_only)
        client.discovery = ServerDiscovery(clock, client.fetch_well_known, resolve_srv)
        keyring = Keyring(config.server_name, signing_key, client, stores.federation, clock,
                          config.federation_trusted_key_servers)
        sender = FederationSender(
            config.server_name, client, stores.federation, stores.events, clock,
            Backoff(config.federation_retry_initial_ms, config.federation_retry_max_ms))
        intake = EventIntake(rooms, keyring, client)
        handshakes = Handshakes(rooms, stores.rooms, intake, client, keyring)
        backfiller = Backfiller(rooms, intake, client, stores.events, stores.state, clock)
        return Federation(client, keyring, sender, intake, handshakes, RemoteQueries(client),
                          backfiller)

    async def _start_federation(self, services: Services, federation: Federation) -> None:
        config, stores = self.config, services.stores
        rooms = services.rooms
        rooms.on_persisted.append(
            lambda event, dests: federation.sender.pdus_queued(dests, event))
        transactions = TransactionHandler(federation.intake, stores.rooms, stores.federation,
                                          self.clock, rooms.room_lock)
        self._transactions = transactions
        self._edu_relay = EduRelay(config.server_name, federation.sender, stores.state,
                                   services.typing, services.receipts, rooms.joined_servers)
        transactions.edu_handlers["m.typing"] = self._edu_relay.on_typing_edu
        transactions.edu_handlers["m.receipt"] = self._edu_relay.on_receipt_edu
        self._edu_relay.start()
        api = FederationApi(
            config.server_name, federation.keyring, federation.client, transactions,
            MembershipServer(rooms, stores.rooms, stores.state, federation.intake,
                             federation.keyring),
            RoomServing(rooms),
            LocalQueries(rooms, stores.rooms, stores.state, stores.accounts, services.profiles,
                         services.public_rooms),
            federation.sender.destination_came_back, config.well_known_server,
        )
        app = build_app(api.routes(), max(config.max_request_bytes, 200 * 65536))
        self.federation_listener = Listener(app, config.federation_listen.host,
                                            config.federation_listen.port, self._tls_context())
        await self.federation_listener.start()
        self._listeners.append(self.federation_listener)
        await federation.sender.start(await stores.rooms.servers_sharing_rooms())

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.config.path(self.config.tls_certificate_file),
                                self.config.path(self.config.tls_private_key_file))
        return context

    async def _build_services(self, stores: Stores, rooms: RoomService,
                              federation: Federation) -> Services:
        config, clock = self.config, self.clock
        notifier, states = rooms.notifier, rooms.states
        accounts = AccountService(config.server_name, stores.accounts, clock, self._hashing)

        async def profile(user_id: str) -> dict[str, Any]:
            if not rooms.is_local(user_id):
                return {}
            try:
                return await accounts.profile(user_id)
            except Exception:
                return {}

        remote = federation.handshakes if config.federation_enabled else NoFederation()
        membership = MembershipService(rooms, stores.rooms, stores.state, profile, remote)

        async def alias_taken(alias: str) -> bool:
            return await stores.rooms.get_alias(alias) is not None

        async def invite(sender: str, room_id: str, target: str, is_direct: bool) -> None:
            await membership.invite(sender, room_id, target, is_direct=is_direct)

        creation = RoomCreation(rooms, alias_taken, stores.rooms.create_alias, profile, invite)
        typing = TypingService(clock, notifier, stores.rooms)
        account_data = AccountDataService(stores.client_data, notifier)
        sync_rooms = SyncRooms(stores.events, stores.state, states)
        return Services(
            stores, notifier, rooms, accounts, membership, creation,
            profiles=ProfileService(rooms, stores.accounts, stores.rooms,
                                    federation.remote_queries if config.federation_enabled
                                    else NoRemoteProfiles()),
            directory=DirectoryService(rooms, stores.rooms, stores.state, membership.remote),
            public_rooms=PublicRoomsService(rooms, stores.rooms, stores.state,
                                            federation.remote_queries
                                            if config.federation_enabled
                                            else NoRemotePublicRooms()),
            push_rules=PushRulesService(stores.client_data, notifier),
            presence=PresenceService(config.presence_enabled, config.server_name, clock,
                                     stores.accounts, stores.rooms, stores.state),
            typing=typing,
            receipts=ReceiptService(stores.client_data, stores.events, stores.rooms,
                                    account_data, clock, notifier),
            account_data=account_data,
            filters=UserFilters(stores.client_data),
            sync=SyncService(clock, notifier, typing, stores.events, stores.rooms,
                             stores.client_data, sync_rooms),
        )

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
            ProfileApi(auth, services.profiles, messages),
            DirectoryApi(auth, services.directory, messages),
            PublicRoomsApi(auth, services.public_rooms),
            PushRulesApi(auth, services.push_rules),
            PresenceApi(auth, services.presence, messages),
            self._room_reads_api(auth, services),
            SyncApi(auth, services.sync, services.filters),
            EphemeralApi(auth, services.typing, services.receipts, messages),
            AccountDataApi(auth, services.account_data),
        ]
        if self.federation is not None:
            apis.append(AdminApi(auth, self.federation.sender.status))
        apis.append(WebClient(load_assets()))
        return [route for api in apis for route in api.routes()]

    def _room_reads_api(self, auth: Authenticator, services: Services) -> RoomReadsApi:
        stores = services.stores
        access = RoomAccess(self.clock, stores.events, stores.state, stores.rooms,
                            services.rooms.states)
        backfill = (self.federation.backfiller
                    if self.federation is not None and self.config.federation_enabled else None)
        return RoomReadsApi(auth, RoomReads(access), RoomMessages(access, backfill))

    async def stop(self) -> None:
        """Stop accepting, finish in-flight requests and writes, close the database."""
        if self._services is not None:
            self._services.notifier.close()  # waiting /sync long-polls answer now
        for listener in reversed(self._listeners):
            await listener.stop()
        self._listeners.clear()
        if self._transactions is not None:
            await self._transactions.close()
            self._transactions = None
        if self.federation is not None:
            await self.federation.sender.stop()
            await self.federation.client.close()
        if self._edu_relay is not None:
            await self._edu_relay.stop()
            self._edu_relay = None
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        self._services = None
        if self._stores is not None:
            await self._stores.close()
            self._stores = None
        if self._hashing is not None:
            self._hashing.shutdown(wait=False)
            self._hashing = None
        if self._data_dir_lock is not None:
            self._data_dir_lock.close()
            self._data_dir_lock = None
        logger.info("RocketNode %s stopped", self.config.server_name)
