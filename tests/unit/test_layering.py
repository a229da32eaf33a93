"""Imports flow one way (ARCHITECTURE.md, "Layout"), checked by walking every module with ast.

    core <- storage <- services <- federation / client_api <- http <- app <- cli

A module may import only from its own layer and the layers to its left; federation and
client_api sit side by side and may not import each other. ``core`` is pure protocol: no asyncio,
sockets, database, clock or config. Modules the diagram does not name are placed in LAYERS below
with the reason; a new top-level module must be added there before it can exist.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

SRC = Path(__file__).parents[2] / "src"
PACKAGE = "rocketnode"

LAYERS: dict[str, int] = {
    "core": 0,
    "storage": 1,
    "services": 2,
    "federation": 3,
    "client_api": 3,
    "http": 4,
    "web": 4,  # the browser client, served by http; any Python in it sits with http
    # The wiring side. config and keys (key material on disk) are read by app and cli and handed
    # to constructors; no layer below app may import them ("core: ... no config").
    "config": 5,
    "keys": 5,
    "app": 5,
    "cli": 6,
    "demo": 6,  # the `rocketnode demo` command: two nodes and a scripted conversation
    "chat": 6,  # the `rocketnode chat` command: a terminal client on matrix-nio
    "__main__": 6,
}
SIBLINGS_THAT_MAY_NOT_MEET = {frozenset({"federation", "client_api"})}

# What `core` must never import: event loops, sockets, threads, databases, HTTP, the clock.
CORE_FORBIDDEN = frozenset({
    "asyncio", "aiohttp", "sqlite3", "aiosqlite", "asyncpg", "psycopg", "psycopg2", "socket",
    "ssl", "selectors", "threading", "multiprocessing", "concurrent", "subprocess", "http",
    "urllib", "httpx", "requests", "aiofiles", "time", "datetime",
})


@dataclass(frozen=True)
class Violation:
    module: str
    line: int
    imported: str
    reason: str

    def __str__(self) -> str:
        return f"{self.module}:{self.line} imports {self.imported}: {self.reason}"


def layer_of(module: str) -> str | None:
    """The layer of ``rocketnode.x.y`` (``x``), or None for the package root itself."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else None


def imported_modules(source: str, module: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """Every module ``source`` imports, absolute, with the line it is imported on.

    ``from a import b`` yields ``a`` and ``a.b`` (``b`` may be a submodule); relative imports
    are resolved against ``module``.
    """
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base_parts = package.split(".")
                if node.level > 1:
                    base_parts = base_parts[: -(node.level - 1)]
                base = ".".join(base_parts + ([node.module] if node.module else []))
            else:
                base = node.module or ""
            yield node.lineno, base
            for alias in node.names:
                if alias.name != "*":
                    yield node.lineno, f"{base}.{alias.name}"


def check_module(module: str, source: str, is_package: bool = False) -> list[Violation]:
    """The layering violations in one module's source."""
    violations = []
    own = layer_of(module)
    if own is not None and own not in LAYERS:
        return [Violation(module, 0, "-", f"unknown layer {own!r}: place it in LAYERS")]
    for line, imported in imported_modules(source, module, is_package):
        reason = _violation_reason(own, imported)
        if reason is not None:
            violations.append(Violation(module, line, imported, reason))
    return violations


def _violation_reason(own: str | None, imported: str) -> str | None:
    top = imported.split(".")[0]
    if own == "core" and top in CORE_FORBIDDEN:
        return "core does no I/O and has no clock"
    target = layer_of(imported)
    if top != PACKAGE or target is None or target not in LAYERS:
        # Not ours, the package root, or `from rocketnode import name` of a non-module name.
        return None
    if own is None:
        return "the package root imports no layer"
    if frozenset({own, target}) in SIBLINGS_THAT_MAY_NOT_MEET:
        return f"{own} and {target} are siblings"
    if LAYERS[target] > LAYERS[own]:
        return f"{own} may not import {target}"
    return None


def source_modules() -> Iterator[tuple[str, Path, bool]]:
    for path in sorted((SRC / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        yield ".".join(parts), path, is_package


def _tree_violations() -> list[Violation]:
    modules = list(source_modules())
    assert any(name == "rocketnode.core.pdu" for name, _, _ in modules), "walked the wrong tree"
    return [
        violation
        for name, path, is_package in modules
        for violation in check_module(name, path.read_text("utf-8"), is_package)
    ]


def test_source_tree_is_layered() -> None:
    assert [str(v) for v in _tree_violations()] == []


# --- the checker itself -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        ("rocketnode.core.pdu", "import asyncio", "asyncio"),
        ("rocketnode.core.pdu", "import time", "time"),
        ("rocketnode.core.pdu", "from datetime import datetime", "datetime"),
        ("rocketnode.core.pdu", "import socket as s", "socket"),
        ("rocketnode.core.pdu", "from aiohttp import web", "aiohttp"),
        ("rocketnode.core.pdu", "import sqlite3", "sqlite3"),
        ("rocketnode.core.pdu", "from concurrent.futures import Future", "concurrent.futures"),
        ("rocketnode.core.pdu", "def f():\n    import threading\n", "threading"),
        ("rocketnode.core.pdu", "from rocketnode.storage import ports", "rocketnode.storage"),
        ("rocketnode.core.pdu", "import rocketnode.services.rooms", "rocketnode.services.rooms"),
        ("rocketnode.core.pdu", "from rocketnode import storage", "rocketnode.storage"),
        ("rocketnode.core.pdu", "from ..storage.ports import X", "rocketnode.storage.ports"),
        ("rocketnode.core.pdu", "from .. import config", "rocketnode.config"),
        ("rocketnode.core", "from ..http import errors", "rocketnode.http"),
        ("rocketnode.core.pdu", "from rocketnode.config import Config", "rocketnode.config"),
        ("rocketnode.storage.ports", "from rocketnode.services import rooms",
         "rocketnode.services"),
        ("rocketnode.services.rooms", "from rocketnode.federation.client import C",
         "rocketnode.federation.client"),
        ("rocketnode.services.rooms", "from rocketnode.keys import load",
         "rocketnode.keys"),
        ("rocketnode.federation.x", "from rocketnode.client_api import paths",
         "rocketnode.client_api"),
        ("rocketnode.client_api.x", "import rocketnode.federation.keyring",
         "rocketnode.federation.keyring"),
        ("rocketnode.federation.x", "from rocketnode.http.auth import A", "rocketnode.http.auth"),
        ("rocketnode.client_api.x", "from rocketnode.http.app_factory import build",
         "rocketnode.http.app_factory"),
        ("rocketnode.http.errors", "from rocketnode.app import Node", "rocketnode.app"),
        ("rocketnode.http.errors", "from rocketnode.config import Config", "rocketnode.config"),
        ("rocketnode.app", "from rocketnode.cli import main", "rocketnode.cli"),
        ("rocketnode", "from rocketnode.core import ids", "rocketnode.core"),
        ("rocketnode.utils", "import json", "-"),
    ],
)
def test_checker_finds_violations(module: str, source: str, expected: str) -> None:
    violations = check_module(module, source, is_package=module.count(".") < 2)
    assert expected in {v.imported for v in violations}, violations


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("rocketnode.core.pdu", "import json, hashlib, re, enum, logging, dataclasses"),
        ("rocketnode.core.pdu", "from rocketnode.core.ids import UserId\nfrom . import errors"),
        ("rocketnode.core.pdu", "from .signing import sign_json"),
        ("rocketnode.storage.sqlite.events", "import sqlite3\nfrom ...core.pdu import Pdu"),
        ("rocketnode.services.rooms", "import asyncio\nfrom rocketnode.storage import ports"),
        ("rocketnode.federation.x", "from rocketnode.services import rooms\nimport aiohttp"),
        ("rocketnode.client_api.x", "from rocketnode.services.rooms import R"),
        ("rocketnode.http.app_factory", "from rocketnode.federation import inbound\n"
                                        "from rocketnode.client_api import rooms"),
        ("rocketnode.app", "from rocketnode.config import Config\nfrom rocketnode.keys import k\n"
                           "from rocketnode.http import app_factory"),
        ("rocketnode.cli", "from rocketnode.app import Node\nimport time"),
        ("rocketnode.client_api.server_info", "from rocketnode import __version__"),
        ("rocketnode.config", "from rocketnode.core.ids import ServerName\nimport time"),
    ],
)
def test_checker_allows_the_permitted_direction(module: str, source: str) -> None:
    assert check_module(module, source) == []
