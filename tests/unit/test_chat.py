"""``rocketnode chat`` without a server: its command line, and the message when matrix-nio is
missing. (The client itself is driven end to end in tests/integration/test_chat.py.)"""

from __future__ import annotations

import sys

import pytest

from rocketnode import chat
from rocketnode.cli import build_parser, main


def test_the_chat_command_takes_a_homeserver_and_a_user() -> None:
    args = build_parser().parse_args(
        ["chat", "--homeserver", "http://127.0.0.1:8008", "--user", "alice"])
    assert (args.command, args.homeserver, args.user, args.password_env) == (
        "chat", "http://127.0.0.1:8008", "alice", "ROCKETNODE_PASSWORD")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["chat", "--user", "alice"])


def test_without_matrix_nio_it_says_what_to_install(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setitem(sys.modules, "nio", None)  # makes `import nio` fail
    assert main(["chat", "--homeserver", "http://127.0.0.1:1", "--user", "alice"]) == 1
    assert "pip install 'rocketnode[client]'" in capsys.readouterr().err


def test_help_lists_every_command() -> None:
    for command in ("/rooms", "/switch", "/join", "/invite", "/leave", "/help", "/quit"):
        assert command in chat.HELP
