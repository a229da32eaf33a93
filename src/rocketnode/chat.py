"""``rocketnode chat``: a terminal Matrix client, built on matrix-nio (the ``client`` extra).

Type a line to send it to the current room; commands start with ``/`` (see ``HELP``).
Incoming messages print as ``HH:MM [room] sender (server): text``.

Staying connected: the client long-polls /sync from the last ``next_batch`` it processed. When
the server goes away it retries with growing pauses (0.5 s doubling to 15 s) and resumes from
that same token, so nothing sent meanwhile is lost and nothing already shown repeats (event IDs
already shown are also remembered, as a second guard). Lines typed while offline wait in an
outbox and are sent in order, each with its own transaction ID kept across retries, so a send
whose answer was lost is not stored twice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import getpass
import os
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import aiohttp

FIRST_RETRY_S = 0.5
MAX_RETRY_S = 15.0
SYNC_TIMEOUT_MS = 30_000
SEEN_EVENTS = 10_000
HISTORY_LINES = 10
JOIN_WAIT_S = 5.0
SYNC_FILTER = {"room": {"timeline": {"limit": 20}}, "presence": {"not_types": ["*"]}}
CONNECTION_ERRORS = (aiohttp.ClientError, TimeoutError, OSError)
HELP = """\
  /rooms                  list joined rooms and pending invites
  /switch ROOM            make ROOM current (its number in /rooms, name, alias or ID)
  /join ROOM [SERVER]     join by alias (#room:server) or ID (!id:server); SERVER to join
                          through, needed for room IDs without a server part
  /invite @user:server    invite someone to the current room
  /leave [ROOM]           leave the current room (or ROOM)
  /help, /quit            this list; leave the client (Ctrl-D works too)
  //text                  send a message that starts with /"""

Output = Callable[[str], None]


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    chat = commands.add_parser("chat", help="a terminal chat client (needs matrix-nio)")
    chat.add_argument("--homeserver", required=True, help="client URL, e.g. http://127.0.0.1:8008")
    chat.add_argument("--user", required=True, help="user name (localpart) or full user ID")
    chat.add_argument("--password-env", default="ROCKETNODE_PASSWORD",
                      help="environment variable holding the password (else prompted)")


def run(args: argparse.Namespace) -> int:
    """The ``chat`` subcommand: sign in, then chat until /quit, end of input or Ctrl-C."""
    try:
        import nio
    except ImportError:
        print("rocketnode chat needs matrix-nio: pip install 'rocketnode[client]'",
              file=sys.stderr)
        return 1
    password = os.environ.get(args.password_env) or _prompt_password()
    if not password:
        print("rocketnode chat: a password is required", file=sys.stderr)
        return 1
    try:
        return asyncio.run(_chat(nio, args.homeserver, args.user, password))
    except KeyboardInterrupt:
        return 0


def _prompt_password() -> str:
    try:
        return getpass.getpass("Password: ")
    except EOFError:
        return ""


def _say(line: str) -> None:
    print(line, flush=True)


async def _chat(nio: Any, homeserver: str, user: str, password: str) -> int:
    config = nio.AsyncClientConfig(max_timeouts=0, encryption_enabled=False,
                                   store_sync_tokens=False)
    client = nio.AsyncClient(homeserver.rstrip("/"), user, config=config)
    try:
        try:
            login = await client.login(password, device_name="rocketnode chat")
        except CONNECTION_ERRORS as exc:
            print(f"rocketnode chat: cannot reach {homeserver}: {exc}", file=sys.stderr)
            return 1
        if not isinstance(login, nio.LoginResponse):
            print(f"rocketnode chat: login failed: {login.message}", file=sys.stderr)
            return 1
        _say(f"Signed in as {client.user_id} on {homeserver}. /help lists the commands.")
        lines: asyncio.Queue[str | None] = asyncio.Queue()
        with _reading_stdin(lines):
            return await ChatSession(nio, client, _say, lines).run()
        return 0
    finally:
        await client.close()


@contextlib.contextmanager
def _reading_stdin(lines: asyncio.Queue[str | None]) -> Iterator[None]:
    """Feed complete lines of standard input into ``lines`` (None at end of input)."""
    loop = asyncio.get_running_loop()
    fd = sys.stdin.fileno()
    pending = bytearray()

    def read_blocking() -> None:
        for line in sys.stdin:
            loop.call_soon_threadsafe(lines.put_nowait, line.rstrip("\r\n"))
        loop.call_soon_threadsafe(lines.put_nowait, None)

    def readable() -> None:
        chunk = os.read(fd, 4096)
        if not chunk:
            loop.remove_reader(fd)
            lines.put_nowait(None)
            return
        pending.extend(chunk)
        while (end := pending.find(b"\n")) >= 0:
            lines.put_nowait(pending[:end].decode("utf-8", "replace").rstrip("\r"))
            del pending[: end + 1]

    try:
        loop.add_reader(fd, readable)
    except PermissionError:  # a regular file or /dev/null cannot be polled: read it in a thread
        threading.Thread(target=read_blocking, name="chat-stdin", daemon=True).start()
    try:
        yield
    finally:
        loop.remove_reader(fd)


@dataclass(slots=True)
class Outgoing:
    room_id: str
    txn_id: str
    body: str


class ChatSession:
    """One signed-in terminal session: the sync loop, the outbox and the commands."""

    def __init__(self, nio: Any, client: Any, out: Output,
                 lines: asyncio.Queue[str | None]) -> None:
        self._nio = nio
        self._client = client
        self._out = out
        self._lines = lines
        self._exit_code = 0
        self._current: str | None = None
        self._seen: set[str] = set()
        self._seen_order: deque[str] = deque()
        self._outbox: asyncio.Queue[Outgoing] = asyncio.Queue()
        self._online = asyncio.Event()
        self._synced = asyncio.Event()

    async def run(self) -> int:
        """Chat until /quit or the end of input; the exit status."""
        async with asyncio.TaskGroup() as group:
            background = [group.create_task(self._sync_forever()),
                          group.create_task(self._deliver())]
            while (line := await self._lines.get()) is not None:
                try:
                    if not await self._handle_line(line):
                        break
                except CONNECTION_ERRORS as exc:
                    self._out(f"! The server cannot be reached: {_reason(exc)}")
            for task in background:
                task.cancel()
        return self._exit_code

    # -- staying in sync ----------------------------------------------------------------------

    async def _sync_forever(self) -> None:
        retry_s = FIRST_RETRY_S
        offline_since: float | None = None
        while True:
            since = self._client.next_batch or None
            try:
                response = await self._client.sync(timeout=SYNC_TIMEOUT_MS, since=since,
                                                   sync_filter=SYNC_FILTER)
                failure = None if isinstance(response, self._nio.SyncResponse) else response
            except CONNECTION_ERRORS as exc:
                failure = exc
            if failure is not None:
                if getattr(failure, "status_code", None) == "M_UNKNOWN_TOKEN":
                    self._out("! The server no longer accepts this session; sign in again.")
                    self._exit_code = 1
                    self._lines.put_nowait(None)
                    return
                self._online.clear()
                if offline_since is None:
                    offline_since = time.monotonic()
                    self._out(f"! Connection lost ({_reason(failure)}); reconnecting…")
                await asyncio.sleep(retry_s)
                retry_s = min(retry_s * 2, MAX_RETRY_S)
                continue
            if offline_since is not None:
                self._out(f"! Reconnected after {time.monotonic() - offline_since:.1f} s; "
                          "catching up from where we left off.")
                offline_since = None
            retry_s = FIRST_RETRY_S
            self._online.set()
            self._receive(response, initial=since is None)
            self._synced.set()

    def _receive(self, response: Any, initial: bool) -> None:
        rooms = response.rooms
        for room_id, info in rooms.join.items():
            events = list(info.timeline.events)
            if initial:
                for event in events:
                    self._remember(event.event_id)
                continue
            for event in events:
                if self._remember(event.event_id):
                    self._show(room_id, event)
        for room_id in rooms.invite:
            room = self._client.invited_rooms.get(room_id)
            inviter = getattr(room, "inviter", None) or "someone"
            name = room.display_name if room is not None else room_id
            self._out(f"* {inviter} invited you to {name}: /join {room_id}")
        for room_id in rooms.leave:
            if room_id == self._current:
                self._current = None
        if initial:
            self._start(response)

    def _start(self, response: Any) -> None:
        joined = self._room_ids()
        if joined:
            self._current = joined[0]
        self._list_rooms()
        if self._current is not None:
            info = response.rooms.join.get(self._current)
            history = [e for e in (info.timeline.events if info else [])
                       if isinstance(e, self._nio.RoomMessage)]
            for event in history[-HISTORY_LINES:]:
                self._show(self._current, event)
            self._out(f"Now in {self._room_name(self._current)}. Type to send; /help.")
        else:
            self._out("You are in no rooms yet: /join #room:server")

    def _remember(self, event_id: str) -> bool:
        """Note ``event_id`` as shown; False if it was already."""
        if event_id in self._seen:
            return False
        self._seen.add(event_id)
        self._seen_order.append(event_id)
        if len(self._seen_order) > SEEN_EVENTS:
            self._seen.discard(self._seen_order.popleft())
        return True

    # -- showing events -----------------------------------------------------------------------

    def _show(self, room_id: str, event: Any) -> None:
        nio = self._nio
        stamp = time.strftime("%H:%M", time.localtime(event.server_timestamp / 1000))
        room = f"[{self._room_name(room_id)}]"
        if isinstance(event, nio.RoomMessage) and hasattr(event, "body"):
            text = str(event.body).replace("\n", "\n      ")
            if isinstance(event, nio.RoomMessageEmote):
                self._out(f"{stamp} {room} * {self._who(room_id, event.sender)} {text}")
            else:
                self._out(f"{stamp} {room} {self._who(room_id, event.sender)}: {text}")
        elif isinstance(event, nio.RedactedEvent):
            self._out(f"{stamp} {room} {self._who(room_id, event.sender)}: (message deleted)")
        elif isinstance(event, nio.RoomMemberEvent):
            change = _membership_change(event)
            if change:
                self._out(f"{stamp} {room} * {self._name(room_id, event.state_key)} {change}")
        elif isinstance(event, nio.RoomNameEvent):
            self._out(f"{stamp} {room} * the room is now called {event.name}")
        elif isinstance(event, nio.RoomTopicEvent):
            self._out(f"{stamp} {room} * topic: {event.topic}")

    def _name(self, room_id: str, user_id: str) -> str:
        room = self._client.rooms.get(room_id)
        name = room.user_name(user_id) if room is not None else None
        return str(name or user_id.split(":", 1)[0].lstrip("@"))

    def _who(self, room_id: str, user_id: str) -> str:
        """A sender as ``name (server)``, or ``name (you)``."""
        where = "you" if user_id == self._client.user_id else user_id.split(":", 1)[-1]
        return f"{self._name(room_id, user_id)} ({where})"

    def _room_name(self, room_id: str) -> str:
        room = self._client.rooms.get(room_id)
        return str(room.display_name) if room is not None else room_id

    def _room_ids(self) -> list[str]:
        return sorted(self._client.rooms, key=lambda r: self._room_name(r).lower())

    def _list_rooms(self) -> None:
        joined = self._room_ids()
        self._out("Rooms:" if joined else "Rooms: none")
        for number, room_id in enumerate(joined, 1):
            room = self._client.rooms[room_id]
            marker = "*" if room_id == self._current else " "
            self._out(f" {marker}{number}. {self._room_name(room_id)}  {room_id}  "
                      f"({room.member_count} members)")
        for room_id, room in self._client.invited_rooms.items():
            self._out(f"  invite: {room.display_name} from {room.inviter}: /join {room_id}")

    # -- commands -----------------------------------------------------------------------------

    async def _handle_line(self, line: str) -> bool:
        """Act on one input line; False to quit."""
        text = line.strip()
        if not text:
            return True
        if text.startswith("/") and not text.startswith("//"):
            command, _, rest = text.partition(" ")
            return await self._command(command.lower(), rest.split())
        if text.startswith("//"):
            line = line.lstrip()[1:]
        if self._current is None:
            self._out("! No current room: /join or /switch first.")
            return True
        self._outbox.put_nowait(Outgoing(self._current, _txn_id(), line))
        return True

    async def _command(self, command: str, args: list[str]) -> bool:
        if command in ("/quit", "/exit"):
            return False
        if command == "/help":
            self._out(HELP)
        elif command == "/rooms":
            self._list_rooms()
        elif command == "/switch" and len(args) == 1:
            self._switch(args[0])
        elif command == "/join" and 1 <= len(args) <= 2:
            await self._join(args[0], args[1:])
        elif command == "/invite" and len(args) == 1:
            await self._invite(args[0])
        elif command == "/leave" and len(args) <= 1:
            await self._leave(args[0] if args else None)
        else:
            self._out(f"! Unknown command or wrong arguments: {command}. /help lists them.")
        return True

    def _find_room(self, wanted: str) -> str | None:
        joined = self._room_ids()
        if wanted.isdigit() and 1 <= int(wanted) <= len(joined):
            return joined[int(wanted) - 1]
        for room_id in joined:
            room = self._client.rooms[room_id]
            if wanted in (room_id, room.canonical_alias) or (
                    wanted.lower() == self._room_name(room_id).lower()):
                return room_id
        return None

    def _switch(self, wanted: str) -> None:
        room_id = self._find_room(wanted)
        if room_id is None:
            self._out(f"! No joined room matches {wanted!r}; /rooms lists them.")
            return
        self._current = room_id
        self._out(f"Now in {self._room_name(room_id)}.")

    async def _join(self, target: str, via: list[str]) -> None:
        invited = self._client.invited_rooms.get(target)
        servers = list(via)
        if invited is not None and invited.inviter:
            servers.append(invited.inviter.split(":", 1)[1])
        if target.startswith("!") and ":" in target:
            servers.append(target.split(":", 1)[1])
        if target.startswith("!") and not servers:
            self._out("! This room ID has no server part: /join ROOM_ID SERVER")
            return
        answer = await self._request("POST", f"/join/{quote(target, safe='')}",
                                     {"via": servers, "server_name": servers})
        if answer is not None:
            room_id = str(answer["room_id"])
            self._current = room_id
            self._out(f"Joined {target}; it is now the current room.")
            await self._recent_history(room_id)

    async def _recent_history(self, room_id: str) -> None:
        """Show the last messages of a room just joined (the sync brings only what follows),
        once the sync has brought the room itself (its name and members)."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(JOIN_WAIT_S):
                while room_id not in self._client.rooms:
                    self._synced.clear()
                    await self._synced.wait()
        answer = await self._client.room_messages(room_id, limit=HISTORY_LINES)
        if not isinstance(answer, self._nio.RoomMessagesResponse):
            return
        earlier = [e for e in reversed(answer.chunk)
                   if isinstance(e, self._nio.RoomMessage) and self._remember(e.event_id)]
        if earlier:
            self._out(f"Earlier in {self._room_name(room_id)}:")
        for event in earlier:
            self._show(room_id, event)

    async def _invite(self, user_id: str) -> None:
        if self._current is None:
            self._out("! No current room.")
            return
        answer = await self._client.room_invite(self._current, user_id)
        if isinstance(answer, self._nio.RoomInviteResponse):
            self._out(f"Invited {user_id} to {self._room_name(self._current)}.")
        else:
            self._out(f"! Could not invite {user_id}: {answer.message}")

    async def _leave(self, wanted: str | None) -> None:
        room_id = self._current if wanted is None else self._find_room(wanted)
        if room_id is None:
            self._out("! Which room? /rooms lists them.")
            return
        name = self._room_name(room_id)
        answer = await self._client.room_leave(room_id)
        if isinstance(answer, self._nio.RoomLeaveResponse):
            if room_id == self._current:
                self._current = None
            self._out(f"Left {name}. /switch to another room.")
        else:
            self._out(f"! Could not leave {name}: {answer.message}")

    async def _request(self, method: str, path: str, query: dict[str, list[str]]
                       ) -> dict[str, Any] | None:
        """A client-server call nio has no method for; prints and returns None on failure."""
        url = f"{self._client.homeserver}/_matrix/client/v3{path}"
        headers = {"Authorization": f"Bearer {self._client.access_token}"}
        params = [(key, value) for key, values in query.items() for value in values]
        try:
            async with aiohttp.ClientSession() as session, session.request(
                    method, url, json={}, params=params, headers=headers) as response:
                body = await response.json(content_type=None)
        except CONNECTION_ERRORS as exc:
            self._out(f"! The server cannot be reached: {_reason(exc)}")
            return None
        if response.status != 200 or not isinstance(body, dict):
            error = body.get("error") if isinstance(body, dict) else None
            self._out(f"! {error or f'The server answered {response.status}'}")
            return None
        return body

    # -- sending ------------------------------------------------------------------------------

    async def _deliver(self) -> None:
        """Send queued lines in order; wait out outages and retry with the same txn ID."""
        while True:
            item = await self._outbox.get()
            told = False
            while True:
                try:
                    answer = await self._client.room_send(
                        item.room_id, "m.room.message", {"msgtype": "m.text", "body": item.body},
                        tx_id=item.txn_id)
                except CONNECTION_ERRORS:
                    if not told:
                        self._out("! Not sent yet: the server is unreachable. It will go out "
                                  "when the connection is back.")
                        told = True
                    self._online.clear()
                    await self._online.wait()
                    continue
                if not isinstance(answer, self._nio.RoomSendResponse):
                    self._out(f"! Message not sent: {answer.message}")
                break


def _membership_change(event: Any) -> str | None:
    before, after = event.prev_membership, event.membership
    if after == "join" and before != "join":
        return "joined"
    if after == "invite":
        return "was invited"
    if after == "leave" and before == "invite":
        return "declined the invitation"
    if after == "leave":
        return "left"
    if after == "ban":
        return "was banned"
    return None


def _reason(failure: object) -> str:
    message = getattr(failure, "message", None) or str(failure) or type(failure).__name__
    return str(message)


def _txn_id() -> str:
    return f"chat.{int(time.time() * 1000)}.{secrets.token_hex(4)}"
