"""Turning exceptions into Matrix error responses, and the request log line."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from aiohttp import web

from rocketnode.core.canonical_json import encode_json
from rocketnode.core.errors import Errcode, LimitExceeded, MatrixError

logger = logging.getLogger(__name__)
access_logger = logging.getLogger("rocketnode.access")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

CORS_HEADERS = {
    "Access-Control-Allow-Origin": "*",
    "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, DELETE, OPTIONS",
    "Access-Control-Allow-Headers": "X-Requested-With, Content-Type, Authorization, Date",
}


def error_response(error: MatrixError) -> web.Response:
    response = web.Response(body=encode_json(error.to_json()), status=error.status,
                            content_type="application/json")
    if isinstance(error, LimitExceeded):
        response.headers["Retry-After"] = str(max(1, (error.retry_after_ms + 999) // 1000))
    return response


def _from_http_exception(exc: web.HTTPException) -> MatrixError:
    if exc.status == 404:
        return MatrixError(Errcode.UNRECOGNIZED, "Unrecognized request", 404)
    if exc.status == 405:
        return MatrixError(Errcode.UNRECOGNIZED, "Method not allowed here", 405)
    if exc.status == 413:
        return MatrixError(Errcode.TOO_LARGE, "Request body too large", 413)
    return MatrixError(Errcode.UNKNOWN, exc.reason or "Error", exc.status)


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.perf_counter()
    status = 500
    try:
        if request.method == "OPTIONS":
            response: web.StreamResponse = web.Response(status=204)
        else:
            response = await handler(request)
        status = response.status
        return response
    except MatrixError as error:
        status = error.status
        return error_response(error)
    except web.HTTPException as exc:
        if exc.status < 400:
            status = exc.status
            raise
        mapped = _from_http_exception(exc)
        status = mapped.status
        return error_response(mapped)
    except Exception:
        logger.exception("Unhandled error in %s %s", request.method, request.path)
        return error_response(MatrixError(Errcode.UNKNOWN, "Internal server error", 500))
    finally:
        access_logger.info(
            "%s %s %d %.1fms", request.method, request.path, status,
            (time.perf_counter() - started) * 1000,
        )
