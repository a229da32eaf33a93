"""The pure protocol core: JSON and bytes in, values out. No asyncio, sockets, database or clock.

Modules: ``ids``, ``canonical_json``, ``signing``, ``room_versions``, ``redaction``, ``pdu``,
``auth_rules``, ``state_res``, ``receipt`` (the checks performed on receipt of a PDU) and
``errors`` (the one error type).
"""
