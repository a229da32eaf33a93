"""`rocketnode demo`: two nodes on loopback and the scripted conversation between them."""

from __future__ import annotations

from pathlib import Path

from rocketnode.demo import MESSAGES, converse, two_nodes


async def test_demo_conversation_crosses_federation_both_ways(tmp_path: Path) -> None:
    lines: list[str] = []
    async with two_nodes(tmp_path) as (first, second):
        assert first.config.server_name != second.config.server_name
        timings = await converse(first, second, lines.append)
    assert len(timings) == len(MESSAGES)
    received = [line for line in lines if " received from " in line]
    assert len(received) == len(MESSAGES)
    for (sender, text), line in zip(MESSAGES, received, strict=True):
        assert f"received from @{sender}:" in line
        assert repr(text) in line
    assert any("joined #demo:" in line for line in lines)
