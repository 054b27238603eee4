"""TLS material for the gRPC link between the planes, read and checked at start.

Each setting names a PEM file. A file that is missing, unreadable or holds no certificate
(or key), and a key that does not belong to its certificate, stop the process with one line
naming the variable: found at start, not at the first handshake.
"""

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from prism.settings import ConfigError, env


@dataclass(frozen=True)
class Identity:
    """A certificate chain (leaf first) and the private key of its leaf, as PEM."""

    certificate_chain: bytes
    private_key: bytes = field(repr=False)


def identity(cert_name: str, key_name: str) -> Identity | None:
    """The certificate and key the two variables name; None when neither is set."""
    cert_path, key_path = env(cert_name, ""), env(key_name, "")
    if not cert_path and not key_path:
        return None
    if not cert_path or not key_path:
        missing, given = (cert_name, key_name) if not cert_path else (key_name, cert_name)
        raise ConfigError(f"{given} is set but {missing} is not: a certificate needs its key")
    chain = _read(cert_name, cert_path)
    certificates = _certificates(cert_name, cert_path, chain)
    key_pem = _read(key_name, key_path)
    try:
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"{key_name}={key_path}: not an unencrypted PEM private key ({error})"
        ) from None
    if _public(key.public_key()) != _public(certificates[0].public_key()):
        raise ConfigError(
            f"{key_name}={key_path} is not the key of the certificate in {cert_name}={cert_path}"
        )
    return Identity(chain, key_pem)


def authorities(name: str) -> bytes | None:
    """The PEM bundle of CA certificates the variable names; None when it is not set."""
    path = env(name, "")
    if not path:
        return None
    bundle = _read(name, path)
    _certificates(name, path, bundle)
    return bundle


def _read(name: str, path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as error:
        raise ConfigError(f"{name}={path}: cannot read it ({error.strerror})") from None


def _certificates(name: str, path: str, pem: bytes) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(pem)
    except ValueError:
        certificates = []
    if not certificates:
        raise ConfigError(f"{name}={path}: holds no PEM certificate")
    return certificates


def _public(key: object) -> bytes:
    return key.public_bytes(  # type: ignore[attr-defined]
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
