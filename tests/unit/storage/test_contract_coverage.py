"""The contract suite calls every method of every storage port at least once.

A method added to ``storage/ports.py`` without a contract test here fails this test: a second
backend could otherwise implement it differently and nothing would notice.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from pathlib import Path

from rocketnode.storage import ports

HERE = Path(__file__).parent


def port_methods() -> dict[str, list[str]]:
    found: dict[str, list[str]] = {}
    for name, value in vars(ports).items():
        if inspect.isclass(value) and getattr(value, "_is_protocol", False) \
                and value.__module__ == ports.__name__:
            found[name] = [m for m, v in vars(value).items()
                           if not m.startswith("_") and inspect.iscoroutinefunction(v)]
    return found


def test_the_ports_are_found() -> None:
    methods = port_methods()
    assert {"EventStore", "StateStore", "RoomStore", "AccountStore", "ClientDataStore"} <= set(
        methods
    )
    assert "persist_event" in methods["EventStore"]


def test_every_port_is_part_of_stores() -> None:
    hints = {f.type for f in dataclasses.fields(ports.Stores)}
    assert set(port_methods()) <= {str(h) for h in hints}


def test_every_port_method_is_exercised_by_the_contract_suite() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in HERE.glob("test_*.py")
        if path.name != Path(__file__).name
    )
    untested = [
        f"{port}.{method}"
        for port, methods in port_methods().items()
        for method in methods
        if not re.search(rf"\.{method}\(", source)
    ]
    assert untested == []
