"""Route helpers: every endpoint under ``/_matrix/client/v3`` and, where clients still call it,
``/_matrix/client/r0``."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
PREFIXES = ("/_matrix/client/v3", "/_matrix/client/r0")


def client_route(method: str, path: str, handler: Handler, r0: bool = True) -> list[web.RouteDef]:
    prefixes = PREFIXES if r0 else PREFIXES[:1]
    return [web.route(method, prefix + path, handler) for prefix in prefixes]


def unstable_route(method: str, path: str, handler: Handler) -> list[web.RouteDef]:
    return [web.route(method, "/_matrix/client/unstable" + path, handler)]
