"""Orgs' own upstream credentials, sealed with the operator's master key.

AES-256-GCM with a random nonce per seal; the org id is bound in as associated data, so a
sealed credential copied into another org's record does not open there. What is stored is
`v1.<base64url(nonce + ciphertext)>`, never the credential.
"""

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from prism.settings import ConfigError

_VERSION = "v1."
_NONCE_BYTES = 12
MASTER_KEY_BYTES = 32


class SealError(Exception):
    """A sealed credential does not open with this master key."""


class Sealer:
    def __init__(self, master_key: bytes) -> None:
        self._aead = AESGCM(master_key)

    def seal(self, org_id: str, credential: str) -> str:
        nonce = os.urandom(_NONCE_BYTES)
        sealed = nonce + self._aead.encrypt(nonce, credential.encode(), org_id.encode())
        return _VERSION + base64.urlsafe_b64encode(sealed).decode()

    def open(self, org_id: str, sealed: str) -> str:
        try:
            raw = base64.urlsafe_b64decode(sealed.removeprefix(_VERSION))
            nonce, ciphertext = raw[:_NONCE_BYTES], raw[_NONCE_BYTES:]
            return self._aead.decrypt(nonce, ciphertext, org_id.encode()).decode()
        except (InvalidTag, ValueError, binascii.Error):
            raise SealError(
                f"org '{org_id}''s upstream credential does not open with PRISM_MASTER_KEY; "
                "was it sealed with another master key?"
            ) from None


def master_key(text: str) -> bytes:
    """PRISM_MASTER_KEY: 32 random bytes, base64-encoded (`openssl rand -base64 32`)."""
    try:
        key = base64.b64decode(text, validate=True)
    except binascii.Error:
        key = b""
    if len(key) != MASTER_KEY_BYTES:
        raise ConfigError(
            "PRISM_MASTER_KEY must be 32 random bytes in base64 (make one with "
            "`openssl rand -base64 32`)"
        )
    return key
