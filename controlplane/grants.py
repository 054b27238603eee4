"""Grants: the control plane's own account of a request it allowed, handed to the data plane
with Check and presented back with that request's Record and FilterOwned calls.

What a Record applies to (the org whose objects it writes, whose runs it charges, whose
slots it frees) and whose objects FilterOwned reveals must come from a decision the control
plane made, never from ids a caller sends. A grant names the org, the key and the request of
one decision, and is signed with HMAC-SHA256 under a key that only control planes read (kept
in Redis, made by the first control plane to start), so any control plane of a deployment
accepts any other's grants and nothing is stored per request. A grant it did not sign, or
one past its lifetime, is refused and changes nothing.

The lifetime covers the longest request a grant serves: a slow 512 MB upload is recorded
when it ends, long after its Check.
"""

import base64
import binascii
import hashlib
import hmac
import json
from dataclasses import dataclass

from controlplane.errors import PermissionDenied

LIFETIME_SECONDS = 24 * 3600
_VERSION = 1
# json.dumps with separators would make an encoder per grant; one does for all.
_COMPACT_JSON = json.JSONEncoder(separators=(",", ":"))


@dataclass(frozen=True)
class Grant:
    org_id: str
    key_id: str
    request_id: str
    # Epoch seconds after which the grant is refused.
    expires_at: int


class Grants:
    def __init__(self, signing_key: bytes) -> None:
        self._key = signing_key

    def issue(self, org_id: str, key_id: str, request_id: str, now: float) -> str:
        expires_at = int(now) + LIFETIME_SECONDS
        payload = _COMPACT_JSON.encode([_VERSION, org_id, key_id, request_id, expires_at]).encode()
        encoded = _b64(payload)
        return f"{encoded}.{_b64(self._sign(encoded))}"

    def open(self, presented: str, now: float) -> Grant:
        """The grant a token carries; PermissionDenied when this deployment did not issue
        it or it has expired."""
        encoded, _, signature = presented.partition(".")
        # The signature as issued, character for character: no other spelling of it passes.
        if not hmac.compare_digest(signature.encode(), _b64(self._sign(encoded)).encode()):
            raise PermissionDenied(
                "the grant is not one this deployment's control planes issued; present the "
                "grant of the request's CheckResponse unchanged"
            )
        version, org_id, key_id, request_id, expires_at = json.loads(_unb64(encoded))
        if version != _VERSION:
            raise PermissionDenied(f"grant version {version} is not understood")
        if expires_at < now:
            raise PermissionDenied(
                f"the grant expired ({LIFETIME_SECONDS // 3600} hours after its Check); "
                "nothing was changed"
            )
        return Grant(org_id, key_id, request_id, expires_at)

    def _sign(self, encoded: str) -> bytes:
        # The one-shot form: the same MAC as hmac.new(...).digest(), without its objects.
        return hmac.digest(self._key, encoded.encode(), hashlib.sha256)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        return b""
