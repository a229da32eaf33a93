"""Ed25519 signing of JSON objects (spec appendix "Signing JSON") and signing key files.

Keys are named ``ed25519:<version>``. Signatures and keys travel as unpadded base64. Key files use
the same one-line format as Synapse (``ed25519 <version> <base64 seed>``), so an operator can
bring an existing key. Reading and writing the files is the caller's job; this module only
parses and formats their text.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import nacl.exceptions
import nacl.signing

from rocketnode.core.canonical_json import encode_canonical_json
from rocketnode.core.errors import CanonicalJsonError, MatrixError, SignatureError

ALGORITHM = "ed25519"
_KEY_VERSION = re.compile(r"[A-Za-z0-9_]+\Z")


def encode_base64(data: bytes, urlsafe: bool = False) -> str:
    """Unpadded base64, standard alphabet unless ``urlsafe``."""
    encoded = base64.urlsafe_b64encode(data) if urlsafe else base64.b64encode(data)
    return encoded.rstrip(b"=").decode("ascii")


def decode_base64(text: str) -> bytes:
    """Decode base64 with or without padding, in either alphabet."""
    if not isinstance(text, str):
        raise SignatureError("Base64 value must be a string")
    cleaned = text.rstrip("=").replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(cleaned + "=" * (-len(cleaned) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise SignatureError(f"Invalid base64: {text!r}") from exc


@dataclass(frozen=True, slots=True)
class SigningKey:
    """An ed25519 signing key with its version (the part after ``ed25519:``)."""

    version: str
    seed: bytes = field(repr=False)
    _signer: nacl.signing.SigningKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _KEY_VERSION.match(self.version):
            raise ValueError(f"Invalid key version: {self.version!r}")
        if len(self.seed) != 32:
            raise ValueError("An ed25519 seed is 32 bytes")
        object.__setattr__(self, "_signer", nacl.signing.SigningKey(self.seed))

    @classmethod
    def generate(cls, version: str) -> SigningKey:
        return cls(version, bytes(nacl.signing.SigningKey.generate()))

    @property
    def key_id(self) -> str:
        return f"{ALGORITHM}:{self.version}"

    @property
    def verify_key(self) -> VerifyKey:
        return VerifyKey(self.key_id, bytes(self._signer.verify_key))

    def sign(self, message: bytes) -> bytes:
        return bytes(self._signer.sign(message).signature)


@dataclass(frozen=True, slots=True)
class VerifyKey:
    """An ed25519 public key with its key ID (``ed25519:<version>``)."""

    key_id: str
    key: bytes
    _verifier: nacl.signing.VerifyKey = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.key) != 32:
            raise SignatureError(f"Verify key {self.key_id} is not 32 bytes")
        object.__setattr__(self, "_verifier", nacl.signing.VerifyKey(self.key))

    @classmethod
    def from_base64(cls, key_id: str, key_base64: str) -> VerifyKey:
        if not key_id.startswith(f"{ALGORITHM}:"):
            raise SignatureError(f"Unsupported key algorithm: {key_id!r}")
        return cls(key_id, decode_base64(key_base64))

    def to_base64(self) -> str:
        return encode_base64(self.key)

    def verify(self, message: bytes, signature: bytes) -> None:
        try:
            self._verifier.verify(message, signature)
        except (nacl.exceptions.BadSignatureError, ValueError, TypeError) as exc:
            raise SignatureError(f"Signature by {self.key_id} does not verify") from exc


def parse_signing_key_file(text: str) -> list[SigningKey]:
    """Parse a Synapse-format key file: one ``ed25519 <version> <base64 seed>`` per line."""
    keys = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split()
        if len(parts) != 3 or parts[0] != ALGORITHM:
            raise ValueError(f"Signing key file line {number}: expected 'ed25519 VERSION SEED'")
        try:
            seed = decode_base64(parts[2])
        except MatrixError as exc:
            raise ValueError(f"Signing key file line {number}: invalid base64 seed") from exc
        keys.append(SigningKey(parts[1], seed))
    if not keys:
        raise ValueError("Signing key file holds no key")
    return keys


def format_signing_key_file(keys: list[SigningKey]) -> str:
    return "".join(f"{ALGORITHM} {key.version} {encode_base64(key.seed)}\n" for key in keys)


def signable_bytes(obj: Mapping[str, Any]) -> bytes:
    """The bytes that are signed: canonical JSON without ``signatures`` and ``unsigned``."""
    stripped = {k: v for k, v in obj.items() if k not in ("signatures", "unsigned")}
    return encode_canonical_json(stripped)


def sign_json(obj: Mapping[str, Any], server_name: str, key: SigningKey) -> dict[str, Any]:
    """Return a copy of ``obj`` with ``server_name``'s signature added under ``signatures``."""
    signature = encode_base64(key.sign(signable_bytes(obj)))
    signed = dict(obj)
    signatures = {name: dict(sigs) for name, sigs in obj.get("signatures", {}).items()}
    signatures.setdefault(server_name, {})[key.key_id] = signature
    signed["signatures"] = signatures
    return signed


def signature_of(obj: Mapping[str, Any], server_name: str, key_id: str) -> bytes:
    """The raw signature by ``server_name`` with ``key_id``; :class:`SignatureError` if absent."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping):
        raise SignatureError("No signatures")
    by_server = signatures.get(server_name)
    if not isinstance(by_server, Mapping) or key_id not in by_server:
        raise SignatureError(f"No signature by {server_name} with key {key_id}")
    return decode_base64(by_server[key_id])


def key_ids_signed_by(obj: Mapping[str, Any], server_name: str) -> list[str]:
    """The ed25519 key IDs with which ``server_name`` has signed ``obj``."""
    signatures = obj.get("signatures")
    if not isinstance(signatures, Mapping):
        return []
    by_server = signatures.get(server_name)
    if not isinstance(by_server, Mapping):
        return []
    return [key_id for key_id in by_server if str(key_id).startswith(f"{ALGORITHM}:")]


def verify_json(
    obj: Mapping[str, Any], server_name: str, verify_key: VerifyKey
) -> None:
    """Check ``server_name``'s signature on ``obj``; raise :class:`SignatureError` if it fails."""
    signature = signature_of(obj, server_name, verify_key.key_id)
    try:
        message = signable_bytes(obj)
    except CanonicalJsonError as exc:
        raise SignatureError(f"Signed object is not canonical JSON: {exc.message}") from exc
    verify_key.verify(message, signature)
