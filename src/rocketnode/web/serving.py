"""Serving the browser client at ``/`` of the client listener.

The page is ``static/index.html``; everything it loads lives under ``/_rocketnode/web/``. The
files are read once, when the routes are built, and answered from memory with an ETag, so a
browser revalidates cheaply and the node never touches the disk per request. Only files that
existed at start-up are served: there is no path from a URL to the file system.

The client renders text from other servers, so every answer carries a Content Security Policy
that allows scripts, styles and connections from this origin only.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web

STATIC_DIR = Path(__file__).parent / "static"
ASSET_PREFIX = "/_rocketnode/web/"
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".svg": "image/svg+xml",
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class Asset:
    body: bytes
    content_type: str
    etag: str


def load_assets(root: Path = STATIC_DIR) -> dict[str, Asset]:
    """Every servable file under ``root``, keyed by its path relative to ``root``."""
    assets = {}
    for path in sorted(root.rglob("*")):
        content_type = CONTENT_TYPES.get(path.suffix)
        if content_type is None or not path.is_file():
            continue
        body = path.read_bytes()
        etag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
        assets[path.relative_to(root).as_posix()] = Asset(body, content_type, etag)
    return assets


class WebClient:
    def __init__(self, assets: dict[str, Asset]) -> None:
        if "index.html" not in assets:
            raise FileNotFoundError("the web client's index.html is missing")
        self._assets = assets

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get("/", self.index),
            web.get(ASSET_PREFIX + "{path:.+}", self.asset),
        ]

    async def index(self, request: web.Request) -> web.Response:
        """GET / — the web client's page."""
        return _answer(request, self._assets["index.html"])

    async def asset(self, request: web.Request) -> web.Response:
        """GET /_rocketnode/web/{path} — a script, style sheet or image of the web client."""
        found = self._assets.get(request.match_info["path"])
        if found is None:
            raise web.HTTPNotFound()
        return _answer(request, found)


def _answer(request: web.Request, asset: Asset) -> web.Response:
    headers = {**SECURITY_HEADERS, "ETag": asset.etag}
    if request.headers.get("If-None-Match") == asset.etag:
        return web.Response(status=304, headers=headers)
    return web.Response(body=asset.body, headers={**headers, "Content-Type": asset.content_type})
