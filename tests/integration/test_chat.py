"""``rocketnode chat`` as a real terminal program (pexpect) against a node run as a real process.

Alice chats from the terminal client; Bob is driven over plain HTTP. The node is killed and
started again on the same data directory in the middle of the conversation: the client must
reconnect on its own, pick up what Bob sent while it was away, send what Alice typed while the
node was down, and show every message exactly once.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import pexpect
import pytest

pytestmark = pytest.mark.slow

PASSWORD = "terminal-password"
START_TIMEOUT_S = 20.0
EXPECT_TIMEOUT_S = 15.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class NodeProcess:
    """``python -m rocketnode.cli serve`` on fixed ports, so it can be killed and restarted."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.federation_port, self.client_port = free_port(), free_port()
        self.server_name = f"127.0.0.1:{self.federation_port}"
        self.url = f"http://127.0.0.1:{self.client_port}"
        self.process: subprocess.Popen[bytes] | None = None
        self.log = data_dir.parent / "node.log"

    def start(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "rocketnode.cli", "serve",
                 "--data-dir", str(self.data_dir), "--server-name", self.server_name,
                 "--client-listen", f"127.0.0.1:{self.client_port}",
                 "--federation-listen", f"127.0.0.1:{self.federation_port}",
                 "--open-registration"],
                stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text()
            try:
                with urllib.request.urlopen(self.url + "/_matrix/client/versions", timeout=1):
                    return
            except OSError:
                time.sleep(0.1)
        raise AssertionError(f"node did not start:\n{self.log.read_text()}")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)
        self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.process = None


class Http:
    """Bob: just enough of the client-server API over urllib."""

    def __init__(self, base_url: str) -> None:
        self.base = base_url + "/_matrix/client/v3"
        self.token = ""

    def call(self, method: str, path: str, body: Any = None,
             query: dict[str, str] | None = None) -> dict[str, Any]:
        url = self.base + path + ("?" + urlencode(query) if query else "")
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        with urllib.request.urlopen(request, timeout=30) as response:
            answer: dict[str, Any] = json.loads(response.read())
            return answer

    def register(self, username: str) -> str:
        answer = self.call("POST", "/register", {
            "username": username, "password": PASSWORD, "auth": {"type": "m.login.dummy"}})
        self.token = answer["access_token"]
        return str(answer["user_id"])

    def send(self, room_id: str, body: str) -> str:
        path = f"/rooms/{quote(room_id, safe='')}/send/m.room.message/{secrets.token_hex(8)}"
        return str(self.call("PUT", path, {"msgtype": "m.text", "body": body})["event_id"])

    def bodies(self, room_id: str) -> list[tuple[str, str]]:
        """Every message in the room, oldest first, as ``(sender, body)``."""
        answer = self.call("GET", f"/rooms/{quote(room_id, safe='')}/messages",
                           query={"dir": "b", "limit": "200"})
        return [(e["sender"], e["content"].get("body", "")) for e in reversed(answer["chunk"])
                if e["type"] == "m.room.message"]


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    started = NodeProcess(tmp_path / "node")
    started.start()
    try:
        yield started
    finally:
        started.stop()


def spawn_chat(node: NodeProcess, user: str, tmp_path: Path) -> pexpect.spawn:
    env = {key: value for key, value in os.environ.items() if key != "ROCKETNODE_PASSWORD"}
    child = pexpect.spawn(
        sys.executable, ["-m", "rocketnode.cli", "chat", "--homeserver", node.url,
                         "--user", user],
        env=env, encoding="utf-8", timeout=EXPECT_TIMEOUT_S, dimensions=(50, 200))
    child.logfile_read = (tmp_path / f"chat-{user}.log").open("w")
    return child


def received(transcript: str, who: str, body: str) -> int:
    """How many times the client printed ``body`` as a message line from ``who``."""
    pattern = rf"^\d\d:\d\d \[[^\]]*\] {re.escape(who)}: {re.escape(body)}\r?$"
    return len(re.findall(pattern, transcript, flags=re.MULTILINE))


def test_chat_joins_talks_and_survives_a_server_restart(node: NodeProcess,
                                                        tmp_path: Path) -> None:
    bob = Http(node.url)
    bob_id = bob.register("bob")
    Http(node.url).register("alice")
    Http(node.url).register("carol")
    room_id = bob.call("POST", "/createRoom", {
        "preset": "public_chat", "name": "Terminal", "room_alias_name": "terminal"})["room_id"]
    bob.send(room_id, "history before alice came")
    server = node.server_name
    bob_line, alice_line = f"bob ({server})", "alice (you)"

    chat = spawn_chat(node, "alice", tmp_path)
    try:
        chat.expect("Password: ")
        chat.sendline(PASSWORD)
        chat.expect(f"Signed in as @alice:{re.escape(server)}")
        chat.expect("You are in no rooms yet")

        chat.sendline(f"/join #terminal:{server}")
        chat.expect("Joined #terminal:")
        chat.expect(re.escape(f"{bob_line}: history before alice came"))
        chat.sendline("hello from the terminal")
        chat.expect(re.escape(f"{alice_line}: hello from the terminal"))
        assert (f"@alice:{server}", "hello from the terminal") in bob.bodies(room_id)
        bob.send(room_id, "bob before the restart")
        chat.expect(re.escape(f"{bob_line}: bob before the restart"))
        chat.sendline("/rooms")
        chat.expect(re.escape(f"*1. Terminal  {room_id}  (2 members)"))

        # An invite shows up; the room ID alone is enough to join (through the inviter's
        # server: room IDs have no server part in room version 12).
        side_id = bob.call("POST", "/createRoom", {"preset": "private_chat", "name": "Side"}
                           )["room_id"]
        bob.call("POST", f"/rooms/{quote(side_id, safe='')}/invite",
                 {"user_id": f"@alice:{server}"})
        chat.expect(re.escape(f"invited you to Side: /join {side_id}"))
        chat.sendline(f"/join {side_id}")
        chat.expect("Joined .*; it is now the current room.")
        chat.sendline("/invite @carol:" + server)
        chat.expect(re.escape(f"Invited @carol:{server} to Side."))
        chat.sendline("/leave")
        chat.expect("Left Side.")
        chat.sendline("/switch Terminal")
        chat.expect("Now in Terminal.")

        node.kill()
        chat.expect("Connection lost")
        chat.sendline("typed while the server was down")
        chat.expect("Not sent yet")
        # Hold the client still while the node comes back and Bob talks, so that his message
        # is certainly committed while the client is away: it must come from resuming at the
        # client's last sync token.
        os.kill(chat.pid, signal.SIGSTOP)
        try:
            node.start()
            bob.send(room_id, "bob right after the restart")
        finally:
            os.kill(chat.pid, signal.SIGCONT)
        chat.expect("Reconnected after")
        chat.expect(re.escape(f"{bob_line}: bob right after the restart"))
        chat.expect(re.escape(f"{alice_line}: typed while the server was down"))
        bob.send(room_id, "bob later on")
        chat.expect(re.escape(f"{bob_line}: bob later on"))
        chat.sendline("back to normal")
        chat.expect(re.escape(f"{alice_line}: back to normal"))

        chat.sendline("/quit")
        chat.expect(pexpect.EOF)
    finally:
        chat.close(force=True)
    assert chat.exitstatus == 0

    transcript = (tmp_path / "chat-alice.log").read_text()
    for who, body in [(bob_line, "history before alice came"),
                      (alice_line, "hello from the terminal"),
                      (bob_line, "bob before the restart"),
                      (bob_line, "bob right after the restart"),
                      (alice_line, "typed while the server was down"),
                      (bob_line, "bob later on"),
                      (alice_line, "back to normal")]:
        assert received(transcript, who, body) == 1, (who, body, transcript)
    # The server stored each message once, in the order they were sent: nothing lost,
    # nothing stored twice (the queued line kept its transaction ID across retries).
    alice_id = f"@alice:{server}"
    assert bob.bodies(room_id) == [
        (bob_id, "history before alice came"), (alice_id, "hello from the terminal"),
        (bob_id, "bob before the restart"), (bob_id, "bob right after the restart"),
        (alice_id, "typed while the server was down"), (bob_id, "bob later on"),
        (alice_id, "back to normal"),
    ]
