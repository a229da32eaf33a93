"""The node's key material on disk: the signing key and the federation TLS certificate,
created on first start."""

from __future__ import annotations

import datetime
import ipaddress
import logging
import os
import secrets
import subprocess
import sys
from pathlib import Path

from rocketnode.core.ids import ServerName
from rocketnode.core.signing import SigningKey, format_signing_key_file, parse_signing_key_file

logger = logging.getLogger(__name__)


def load_or_create_signing_key(path: Path) -> SigningKey:
    if path.exists():
        return parse_signing_key_file(path.read_text(encoding="utf-8"))[0]
    key = SigningKey.generate("a_" + secrets.token_hex(2))
    _write_private(path, format_signing_key_file([key]).encode("ascii"))
    logger.info("Created signing key %s in %s", key.key_id, path)
    return key


def _write_private(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def load_or_create_tls(cert_path: Path, key_path: Path, server_name: str) -> None:
    """Create a self-signed certificate for ``server_name`` unless both files exist.

    The certificate is made in a short-lived child process: the cryptography package would
    otherwise stay in the node's memory (about 10 MiB) for a job done once.
    """
    if cert_path.exists() and key_path.exists():
        return
    subprocess.run(
        [sys.executable, "-m", "rocketnode.keys", str(cert_path), str(key_path), server_name],
        check=True,
    )
    logger.info("Created a self-signed TLS certificate for %s in %s", server_name, cert_path)


def write_self_signed_certificate(cert_path: Path, key_path: Path, server_name: str) -> None:
    """Write a new self-signed certificate and key for ``server_name`` (and loopback)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    host = ServerName.parse(server_name).host.strip("[]")
    private_key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName("localhost")]
    try:
        names.append(x509.IPAddress(ipaddress.ip_address(host)))
    except ValueError:
        names.append(x509.DNSName(host))
    names.append(x509.IPAddress(ipaddress.ip_address("127.0.0.1")))
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(private_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.SubjectAlternativeName(list(dict.fromkeys(names))), critical=False)
        .sign(private_key, hashes.SHA256())
    )
    key_path.unlink(missing_ok=True)
    _write_private(
        key_path,
        private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


if __name__ == "__main__":
    write_self_signed_certificate(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3])
