"""The web client in a real headless Chromium, against two nodes federating on loopback.

Alice (an admin on node A) signs in, creates a room and invites Bob; Bob registers on node B,
accepts the invite, and they talk: every message must appear on the other page within two
seconds, with the typing indicator, read receipt markers, each member's server and a redaction
showing too. Both pages must stay free of console errors. Screenshots of each page are kept in
``test-artifacts/``.

Chromium comes from the Debian package (``/usr/bin/chromium``; ``make test`` installs it) and is
driven through Playwright; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import secrets
import socket
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote

import aiohttp
import pytest
from playwright.async_api import (
    ConsoleMessage,
    Locator,
    Page,
    Route,
    async_playwright,
    expect,
)

from rocketnode.app import Node
from rocketnode.config import Listen
from tests.nodes import node_config, running_node

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).parents[2] / "test-artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
DELIVERY_MS = 2000  # a message typed on one page appears on the other within this
EVENTUALLY_MS = 10_000  # typing and receipts travel as federation EDUs
PASSWORD = "correct horse battery"
ADMIN_API = "/_rocketnode/admin/v1/federation"

if not CHROMIUM.exists():
    pytest.skip("needs the Debian chromium package: apt-get install -y chromium",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@asynccontextmanager
async def federating_node(data_dir: Path) -> AsyncIterator[Node]:
    """A node named after its federation port, so other nodes can reach it by name."""
    port = free_port()
    config = node_config(data_dir, server_name=f"127.0.0.1:{port}",
                         federation_listen=Listen("127.0.0.1", port))
    async with running_node(config) as node:
        yield node


@dataclass
class Console:
    """What a page logged as an error.

    ``allowed`` lists URL parts of requests expected to fail, which Chromium logs as console
    errors: the admin API probe answers 403 to non-admins (that is how the client learns not to
    show the Federation panel), and a test may break a request on purpose.
    """

    allowed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    def watch(self, page: Page) -> None:
        page.on("console", self._on_console)
        page.on("pageerror", lambda error: self.errors.append(f"pageerror: {error}"))

    def _on_console(self, message: ConsoleMessage) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        if any(part in url for part in self.allowed):
            return
        self.errors.append(f"console: {message.text} ({url})")


@asynccontextmanager
async def chromium(users: int = 1, width: int = 1280, height: int = 800
                   ) -> AsyncIterator[list[Page]]:
    """One page for each user, each in its own headless Chromium with a fresh profile (as two
    people on two machines: a page in a background tab would have its rendering throttled)."""
    async with async_playwright() as driver, contextlib.AsyncExitStack() as stack:
        pages = []
        for _ in range(users):
            profile = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="rocketnode-chromium-"))
            context = await driver.chromium.launch_persistent_context(
                profile, executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_ARGS,
                viewport={"width": width, "height": height},
            )
            stack.push_async_callback(context.close)
            pages.append(context.pages[0] if context.pages else await context.new_page())
        yield pages


async def sign_in(page: Page, user: str, register: bool) -> None:
    if register:
        await page.get_by_role("button", name="Create an account").click()
    await page.get_by_label("Username").fill(user)
    await page.get_by_label("Password").fill(PASSWORD)
    await page.locator("#auth-submit").click()
    await expect(page.locator("#app")).to_be_visible()
    await expect(page.locator("#me")).to_contain_text(f"@{user}:")


async def send_message(page: Page, text: str) -> None:
    composer = page.get_by_label("Message", exact=True)
    await composer.fill(text)
    await composer.press("Enter")


async def create_room(page: Page, name: str, topic: str = "", alias: str = "",
                      public: bool = False) -> None:
    await page.get_by_role("button", name="New room").click()
    dialog = page.get_by_role("dialog", name="New room")
    await dialog.get_by_label("Name").fill(name)
    await dialog.get_by_label("Topic").fill(topic)
    await dialog.get_by_label("Address").fill(alias)
    if public:
        await dialog.get_by_label("Public").check()
    await dialog.get_by_role("button", name="Create room").click()
    await expect(page.locator("#room-name")).to_have_text(name)


async def invite_user(page: Page, room_name: str, user_id: str) -> None:
    await page.get_by_role("button", name="Invite").click()
    dialog = page.get_by_role("dialog", name=f"Invite to {room_name}")
    await dialog.get_by_label("Matrix ID").fill(user_id)
    await dialog.get_by_role("button", name="Invite").click()
    await expect(dialog).to_be_hidden()
    await expect(page.locator("#events")).to_contain_text(f"invited {user_id.split(':')[0][1:]}")


def message(page: Page, text: str, exact: bool = False) -> Locator:
    """The timeline item of the message containing ``text`` (or whose body is ``text``)."""
    if exact:
        return page.locator("#events li.message").filter(
            has=page.locator(".body", has_text=re.compile(f"^{re.escape(text)}$")))
    return page.locator("#events li.message", has_text=text)


async def redact(node: Node, token: str, room_id: str, event_id: str) -> None:
    path = (f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/redact/"
            f"{quote(event_id, safe='')}/{secrets.token_hex(6)}")
    async with aiohttp.ClientSession() as session, session.put(
            node.client_url + path, json={"reason": "test"},
            headers={"Authorization": f"Bearer {token}"}) as response:
        assert response.status == 200, await response.text()


async def test_two_pages_on_two_servers_talk(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    async with federating_node(tmp_path / "a") as node_a, \
            federating_node(tmp_path / "b") as node_b:
        server_a, server_b = node_a.config.server_name, node_b.config.server_name
        await node_a.services.accounts.register("alice", PASSWORD, is_admin=True)
        alice_console, bob_console = Console(), Console(allowed=[ADMIN_API])
        async with chromium(users=2) as (alice, bob):
            alice_console.watch(alice)
            bob_console.watch(bob)
            await alice.goto(node_a.client_url + "/")
            await bob.goto(node_b.client_url + "/")
            await sign_in(alice, "alice", register=False)
            await sign_in(bob, "bob", register=True)

            # Alice creates a private room and invites Bob from the other server.
            await create_room(alice, "Launch plans", topic="Federated, end to end")
            await expect(alice.locator("#room-topic")).to_have_text("Federated, end to end")
            await invite_user(alice, "Launch plans", f"@bob:{server_b}")

            # Bob sees the invite (with who sent it, from which server) and accepts it.
            invite = bob.locator("#invite-list li", has_text="Launch plans")
            await expect(invite).to_contain_text(f"from alice · {server_a}",
                                                 timeout=EVENTUALLY_MS)
            await invite.get_by_role("button", name="Accept the invite to Launch plans").click()
            await expect(bob.locator("#room-name")).to_have_text("Launch plans",
                                                                  timeout=EVENTUALLY_MS)
            await expect(alice.locator("#events")).to_contain_text("bob joined",
                                                                   timeout=EVENTUALLY_MS)

            # Messages typed in each page appear in the other within two seconds.
            for sender, receiver, text in (
                (bob, alice, "Hello from server B!"),
                (alice, bob, "Hi Bob, this is server A.\nSecond line."),
                (bob, alice, "Received loud and clear."),
            ):
                started = time.monotonic()
                await send_message(sender, text)
                first_line = text.splitlines()[0]
                await expect(message(receiver, first_line)).to_be_visible(timeout=DELIVERY_MS)
                assert time.monotonic() - started < DELIVERY_MS / 1000
                await expect(message(sender, first_line)).to_have_attribute(
                    "data-status", "sent")
            await expect(message(bob, "Hi Bob")).to_contain_text("Second line.")
            await expect(message(alice, "Hello from server B!").locator(".server")).to_have_text(
                server_b)

            # Typing shows on the other side, and stops when the composer is emptied.
            composer = alice.get_by_label("Message", exact=True)
            await composer.press_sequentially("I am typing")
            await expect(bob.locator("#typing")).to_have_text("alice is typing…",
                                                               timeout=EVENTUALLY_MS)
            await bob.screenshot(path=ARTIFACTS / "web-bob-typing.png")
            await composer.fill("")
            await expect(bob.locator("#typing")).to_have_text("", timeout=EVENTUALLY_MS)

            # Each page reads the other's last message; the markers show on both sides.
            alice_read = message(bob, "Received loud and clear.").locator(
                f'.receipt[data-user-id="@alice:{server_a}"]')
            await expect(alice_read).to_be_visible(timeout=EVENTUALLY_MS)
            await expect(message(alice, "Hi Bob").locator(
                f'.receipt[data-user-id="@bob:{server_b}"]')).to_be_visible(
                timeout=EVENTUALLY_MS)
            # ...at the event each has read, not elsewhere (no one marks their own messages).
            await expect(alice.locator(f'.receipt[data-user-id="@bob:{server_b}"]')
                         ).to_have_count(1)
            await expect(bob.locator(f'.receipt[data-user-id="@alice:{server_a}"]')
                         ).to_have_count(1)

            # The member list shows both members, each with their own server, on both pages.
            for page in (alice, bob):
                members = page.locator("#member-list")
                await expect(members).to_be_visible()
                await expect(members.locator(f'[data-user-id="@alice:{server_a}"] .server')
                             ).to_have_text(server_a, timeout=EVENTUALLY_MS)
                await expect(members.locator(f'[data-user-id="@bob:{server_b}"] .server')
                             ).to_have_text(server_b, timeout=EVENTUALLY_MS)

            # A redaction (made through the API) shows as a deleted message on both pages.
            doomed = message(alice, "Hello from server B!")
            event_id = await doomed.get_attribute("data-event-id")
            room_id = await alice.evaluate(
                "() => document.querySelector('#room-list [aria-current=true]').dataset.roomId")
            token = await alice.evaluate(
                "() => JSON.parse(localStorage.getItem('rocketnode.session')).accessToken")
            assert event_id and room_id and token
            await redact(node_a, token, room_id, event_id)
            for page in (alice, bob):
                deleted = page.locator(f'#events li[data-event-id="{event_id}"]')
                await expect(deleted).to_have_class(re.compile(r"\bredacted\b"),
                                                    timeout=EVENTUALLY_MS)
                await expect(deleted.locator(".body")).to_have_text("Message deleted")

            # Bob joins a public room on the other server by its alias; new messages there
            # count as unread in his room list until he opens it; then he leaves it.
            await create_room(alice, "Lobby", alias="lobby", public=True)
            await bob.get_by_role("button", name="Join room").click()
            join = bob.get_by_role("dialog", name="Join a room")
            await join.get_by_label("Room alias or room ID").fill(f"#lobby:{server_a}")
            await join.get_by_role("button", name="Join").click()
            await expect(bob.locator("#room-name")).to_have_text("Lobby", timeout=EVENTUALLY_MS)
            await bob.locator("#room-list button", has_text="Launch plans").click()
            await send_message(alice, "Anyone in the lobby?")
            lobby = bob.locator("#room-list button", has_text="Lobby")
            await expect(lobby.locator(".badge")).to_have_text("1", timeout=DELIVERY_MS)
            await expect(lobby).to_contain_text("alice: Anyone in the lobby?")
            await expect(bob).to_have_title("(1) RocketNode")
            await lobby.click()
            await expect(lobby.locator(".badge")).to_have_count(0)
            await expect(bob).to_have_title("RocketNode")
            await bob.get_by_role("button", name="Leave").click()
            await bob.get_by_role("dialog", name="Leave Lobby?").get_by_role(
                "button", name="Leave room").click()
            await expect(lobby).to_have_count(0)
            await expect(alice.locator("#events")).to_contain_text("bob left",
                                                                   timeout=EVENTUALLY_MS)

            # An invite can be declined too.
            await create_room(alice, "Side room")
            await invite_user(alice, "Side room", f"@bob:{server_b}")
            side_invite = bob.locator("#invite-list li", has_text="Side room")
            await side_invite.get_by_role("button", name="Decline the invite to Side room"
                                          ).click(timeout=EVENTUALLY_MS)
            await expect(side_invite).to_have_count(0)
            await expect(alice.locator("#events")).to_contain_text(
                "bob declined the invitation", timeout=EVENTUALLY_MS)
            await expect(bob.locator("#room-list button", has_text="Side room")).to_have_count(0)
            await alice.locator("#room-list button", has_text="Launch plans").click()

            # Alice is an admin: the Federation panel lists node B as healthy. Bob is not.
            await expect(bob.locator("#federation-button")).to_be_hidden()
            await alice.get_by_role("button", name="Federation").click()
            row = alice.locator(f'#federation-rows tr[data-destination="{server_b}"]')
            await expect(row).to_have_attribute("data-state", "ok", timeout=EVENTUALLY_MS)
            await expect(row.locator(".pill")).to_have_text("OK")
            await expect(row.locator("td").nth(1)).to_have_text("0", timeout=EVENTUALLY_MS)
            await alice.screenshot(path=ARTIFACTS / "web-alice-federation.png")
            await alice.get_by_role("dialog", name="Federation").get_by_role(
                "button", name="Close").click()
            await expect(alice.locator("#federation-dialog")).to_be_hidden()

            await alice.screenshot(path=ARTIFACTS / "web-alice.png")
            await bob.screenshot(path=ARTIFACTS / "web-bob.png")

    assert alice_console.errors == []
    assert bob_console.errors == []


async def test_narrow_screen_has_no_horizontal_overflow(tmp_path: Path) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    console = Console(allowed=[ADMIN_API])

    async def assert_fits(page: Page) -> None:
        widths = await page.evaluate(
            "() => [document.documentElement.scrollWidth, document.body.scrollWidth,"
            " window.innerWidth]")
        assert widths[0] <= widths[2] and widths[1] <= widths[2], widths

    async with running_node(node_config(tmp_path / "node")) as node, \
            chromium(width=375, height=740) as (page,):
        console.watch(page)
        await page.goto(node.client_url + "/")
        await expect(page.locator("#auth-screen")).to_be_visible()
        await assert_fits(page)
        await sign_in(page, "carol-with-a-rather-long-name", register=True)
        await assert_fits(page)
        await page.get_by_role("button", name="New room").click()
        create = page.get_by_role("dialog", name="New room")
        await create.get_by_label("Name").fill("A room with a long name that must not overflow")
        await create.get_by_label("Topic").fill("Topics can be long too " * 5)
        await create.get_by_role("button", name="Create room").click()
        await expect(page.locator("#room-view")).to_be_visible()
        await expect(page.locator("#sidebar")).to_be_hidden()  # one column: room or list
        await send_message(page, "An unbroken word: " + "x" * 300)
        await expect(page.locator("#events li.message[data-status=sent]")).to_have_count(1)
        await assert_fits(page)
        await page.screenshot(path=ARTIFACTS / "web-narrow-room.png")
        await page.get_by_role("button", name="Members").click()
        await expect(page.locator("#members")).to_be_visible()
        await assert_fits(page)
        await page.get_by_role("button", name="Close the member list").click()
        await page.get_by_role("button", name="Back to rooms").click()
        await expect(page.locator("#sidebar")).to_be_visible()
        await expect(page.locator("#room-list button[aria-current=true]")).to_be_focused()
        await assert_fits(page)
        await page.screenshot(path=ARTIFACTS / "web-narrow-list.png")
    assert console.errors == []


async def test_history_retry_keyboard_and_session(tmp_path: Path) -> None:
    """Back-pagination on scroll, a failed send retried, Shift+Enter, the via server asked for,
    and the session kept in localStorage until logging out."""
    console = Console(allowed=[ADMIN_API, "/send/m.room.message/"])
    async with running_node(node_config(tmp_path / "node")) as node, chromium() as (page,):
        console.watch(page)
        await page.goto(node.client_url + "/")
        await sign_in(page, "dave", register=True)
        await create_room(page, "History")
        room_id = await page.evaluate(
            "() => document.querySelector('#room-list [aria-current=true]').dataset.roomId")
        token = await page.evaluate(
            "() => JSON.parse(localStorage.getItem('rocketnode.session')).accessToken")
        async with aiohttp.ClientSession() as session:
            for number in range(1, 61):
                path = (f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}/send/"
                        f"m.room.message/old{number}")
                async with session.put(node.client_url + path,
                                       json={"msgtype": "m.text", "body": f"old message {number}"},
                                       headers={"Authorization": f"Bearer {token}"}) as answer:
                    assert answer.status == 200

        # A reload keeps the session; the room opens on its newest messages only.
        await page.reload()
        await expect(page.locator("#me")).to_contain_text("@dave:")
        await page.locator("#room-list button", has_text="History").click()
        await expect(message(page, "old message 60")).to_be_visible()
        await expect(page.locator("#events li.message")).to_have_count(30)
        await expect(message(page, "old message 1", exact=True)).to_have_count(0)
        # Scrolling up loads older messages, page by page, until the start of the room.
        history = page.locator("#history-status")
        for _ in range(10):
            await page.locator("#timeline").evaluate("timeline => { timeline.scrollTop = 0; }")
            await page.wait_for_timeout(200)
            if await history.text_content() == "This is the beginning of the room.":
                break
        await expect(message(page, "old message 1", exact=True)).to_be_attached()
        await expect(page.locator("#events li.message")).to_have_count(60)
        await expect(page.locator("#history-status")).to_have_text(
            "This is the beginning of the room.")
        await expect(page.locator("#events li.creation summary")).to_contain_text(
            "dave created and configured the room")

        # Shift+Enter starts a new line, Enter sends.
        composer = page.get_by_label("Message", exact=True)
        await composer.press_sequentially("first line")
        await composer.press("Shift+Enter")
        await composer.press_sequentially("second line")
        await expect(composer).to_have_value("first line\nsecond line")
        await composer.press("Enter")
        await expect(message(page, "first line")).to_have_attribute("data-status", "sent")
        await expect(message(page, "first line").locator(".body")).to_have_text(
            "first line\nsecond line")
        await expect(composer).to_have_value("")

        # A message shows as sending until the server has it, then as sent.
        async def slow(route: Route) -> None:
            await asyncio.sleep(0.8)
            await route.continue_()

        await page.route("**/send/m.room.message/**", slow)
        await send_message(page, "patience")
        await expect(message(page, "patience")).to_have_attribute("data-status", "sending")
        await expect(message(page, "patience")).to_contain_text("Sending…")
        await expect(message(page, "patience")).to_have_attribute("data-status", "sent")
        await expect(message(page, "patience")).to_contain_text("Sent")
        await page.unroute("**/send/m.room.message/**")

        # State changes made elsewhere show as compact lines.
        async with aiohttp.ClientSession() as session, session.put(
                node.client_url + f"/_matrix/client/v3/rooms/{quote(room_id, safe='')}"
                "/state/m.room.topic", json={"topic": "Now with a topic"},
                headers={"Authorization": f"Bearer {token}"}) as answer:
            assert answer.status == 200
        await expect(page.locator("#events li.state").last).to_contain_text(
            "dave set the topic to “Now with a topic”")
        await expect(page.locator("#room-topic")).to_have_text("Now with a topic")

        # A send that fails is marked so and can be retried.
        await page.route("**/send/m.room.message/**", lambda route: route.abort())
        await send_message(page, "flaky message")
        failed = message(page, "flaky message")
        await expect(failed).to_have_attribute("data-status", "failed")
        await expect(failed).to_contain_text("Not sent.")
        await page.unroute("**/send/m.room.message/**")
        await failed.get_by_role("button", name="Retry").click()
        await expect(failed).to_have_attribute("data-status", "sent")
        await expect(message(page, "flaky message")).to_have_count(1)

        # A room ID without a server part needs a server to join through.
        await page.get_by_role("button", name="Join room").click()
        join = page.get_by_role("dialog", name="Join a room")
        await join.get_by_label("Room alias or room ID").fill("!opaqueroomid")
        await expect(join.locator("#join-via-optional")).to_have_text(
            "(required for this room ID)")
        await join.get_by_role("button", name="Join").click()
        await expect(join.get_by_role("alert")).to_contain_text("enter a server to join through")
        await expect(join.get_by_label("Join through server")).to_be_focused()
        await page.keyboard.press("Escape")
        await expect(join).to_be_hidden()

        # Logging out forgets the session.
        await page.get_by_role("button", name="Log out").click()
        await expect(page.locator("#auth-screen")).to_be_visible()
        assert await page.evaluate("() => localStorage.getItem('rocketnode.session')") is None
        await page.screenshot(path=ARTIFACTS / "web-signed-out.png")
    assert console.errors == []
