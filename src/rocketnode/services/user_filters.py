"""Filters a user stores on the server (client-server API "Filtering": POST/GET
``/user/{userId}/filter``) and the ``filter`` parameter that names one or inlines one."""

from __future__ import annotations

import json
from typing import Any

from rocketnode.core.errors import Errcode, MatrixError
from rocketnode.services.filters import Filter
from rocketnode.storage.ports import ClientDataStore

MAX_FILTER_ID_DIGITS = 18


def _filter_id(raw: str) -> int:
    if not raw.isdigit() or len(raw) > MAX_FILTER_ID_DIGITS:
        raise MatrixError(Errcode.NOT_FOUND, "No such filter", 404)
    return int(raw)


class UserFilters:
    def __init__(self, store: ClientDataStore) -> None:
        self._store = store

    async def define(self, user_id: str, raw: dict[str, Any]) -> str:
        """Store a filter (checked first: ``M_BAD_JSON`` if malformed); return its ID."""
        Filter.parse(raw)
        return str(await self._store.add_filter(user_id, raw))

    async def get(self, user_id: str, filter_id: str) -> dict[str, Any]:
        found = await self._store.get_filter(user_id, _filter_id(filter_id))
        if found is None:
            raise MatrixError(Errcode.NOT_FOUND, "No such filter", 404)
        return found

    async def resolve(self, user_id: str, raw: str | None) -> Filter:
        """The ``filter`` query parameter of /sync: inline JSON, or a stored filter's ID."""
        if raw is None or raw == "":
            return Filter()
        if raw.lstrip().startswith("{"):
            try:
                decoded = json.loads(raw)
            except ValueError as exc:
                raise MatrixError(Errcode.NOT_JSON, "The filter is not valid JSON") from exc
            return Filter.parse(decoded)
        return Filter.parse(await self.get(user_id, raw))
