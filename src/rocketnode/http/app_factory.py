"""Building and running aiohttp applications."""

from __future__ import annotations

import ssl
from collections.abc import Iterable

from aiohttp import web

from rocketnode.http.errors import CORS_HEADERS, error_middleware


async def _add_cors_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Every answer may be read by browser clients on any origin (client-server API "Web
    Browser Clients")."""
    response.headers.update(CORS_HEADERS)


def build_app(routes: Iterable[web.RouteDef], max_request_bytes: int) -> web.Application:
    app = web.Application(middlewares=[error_middleware], client_max_size=max_request_bytes)
    app.on_response_prepare.append(_add_cors_headers)
    app.add_routes(list(routes))
    return app


class Listener:
    """One aiohttp application served on one address."""

    def __init__(self, app: web.Application, host: str, port: int,
                 ssl_context: ssl.SSLContext | None = None) -> None:
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
        self._host = host
        self._port = port
        self._ssl = ssl_context
        self.port = port

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, ssl_context=self._ssl,
                           reuse_address=True)
        try:
            await site.start()
        except BaseException:
            await self._runner.cleanup()
            raise
        if self._port == 0:
            for address in self._runner.addresses:
                self.port = int(address[1])
                break

    async def stop(self) -> None:
        await self._runner.cleanup()
