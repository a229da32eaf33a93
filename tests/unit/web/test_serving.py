"""The web client's files, served by the node: the page at ``/``, its modules and style sheet
under ``/_rocketnode/web/``, with a Content Security Policy, ETags, and nothing else."""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path

import aiohttp
import pytest

from rocketnode.app import Node
from rocketnode.web.serving import ASSET_PREFIX, STATIC_DIR, WebClient, load_assets


async def get(node: Node, path: str, headers: dict[str, str] | None = None
              ) -> tuple[int, Mapping[str, str], bytes]:
    async with aiohttp.ClientSession() as session, session.get(
            node.client_url + path, headers=headers) as response:
        return response.status, response.headers.copy(), await response.read()


async def test_the_page_is_served_at_the_root(node: Node) -> None:
    status, headers, body = await get(node, "/")
    assert status == 200
    assert headers["Content-Type"] == "text/html; charset=utf-8"
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"
    assert b'<script type="module" src="/_rocketnode/web/js/main.js">' in body


async def test_every_file_the_page_and_its_modules_load_is_served(node: Node) -> None:
    """Walk the page's links and each module's imports: all of them must resolve."""
    _, _, page = await get(node, "/")
    wanted = set(re.findall(rb'(?:href|src)="(/_rocketnode/web/[^"]+)"', page))
    checked: set[bytes] = set()
    while wanted - checked:
        path = (wanted - checked).pop()
        checked.add(path)
        status, headers, body = await get(node, path.decode())
        assert status == 200, path
        if path.endswith(b".js"):
            assert headers["Content-Type"] == "text/javascript; charset=utf-8"
            base = path.rsplit(b"/", 1)[0]
            for relative in re.findall(rb'from "(\.{1,2}/[^"]+)"', body):
                parts = [*base.split(b"/"), *relative.split(b"/")]
                resolved: list[bytes] = []
                for part in parts:
                    if part == b"..":
                        resolved.pop()
                    elif part != b".":
                        resolved.append(part)
                wanted.add(b"/".join(resolved))
    assert b"/_rocketnode/web/js/views/timeline.js" in checked
    assert b"/_rocketnode/web/style.css" in checked


async def test_unchanged_files_answer_304(node: Node) -> None:
    status, headers, _ = await get(node, ASSET_PREFIX + "style.css")
    assert status == 200
    again, _, body = await get(node, ASSET_PREFIX + "style.css",
                               {"If-None-Match": headers["ETag"]})
    assert (again, body) == (304, b"")


@pytest.mark.parametrize("path", [
    ASSET_PREFIX + "missing.js", ASSET_PREFIX + "../serving.py", ASSET_PREFIX + "%2e%2e/app.py",
    ASSET_PREFIX + "js/../../serving.py",
])
async def test_only_the_client_files_are_served(node: Node, path: str) -> None:
    status, _, body = await get(node, path)
    assert status == 404
    assert b"M_UNRECOGNIZED" in body


def test_assets_are_the_static_files_with_known_types(tmp_path: Path) -> None:
    (tmp_path / "index.html").write_text("<!doctype html>")
    (tmp_path / "js").mkdir()
    (tmp_path / "js" / "main.js").write_text("export {};")
    (tmp_path / "notes.txt").write_text("not served")
    assets = load_assets(tmp_path)
    assert sorted(assets) == ["index.html", "js/main.js"]
    assert assets["js/main.js"].content_type == "text/javascript; charset=utf-8"
    assert len({a.etag for a in assets.values()}) == 2
    assert "index.html" in load_assets(STATIC_DIR)


def test_a_client_without_its_page_refuses_to_start(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        WebClient(load_assets(tmp_path))
