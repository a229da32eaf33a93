"""aiohttp glue: the app factory, request authentication, JSON bodies, errors, limits, logs.

This is the only layer that turns exceptions into ``{"errcode", "error"}`` responses.
"""
