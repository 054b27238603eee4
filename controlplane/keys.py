"""Key and service-token secrets and ids: how they are made, hashed, shown and masked.

Only the SHA-256 of a secret is ever stored; the secret exists in the CreateKey, RotateKey
or CreateServiceToken response and nowhere else.
"""

import hashlib
import secrets
import string

SECRET_PREFIX = "sk-prism-"
BASE62 = string.ascii_letters + string.digits
SECRET_LENGTH = 48
KEY_ID_PREFIX = "key_"
# Service tokens (prism.v1.Keys callers) look like keys, so redaction and secret scanners
# treat them alike, but can never be taken for one: `-` is not base62.
SERVICE_SECRET_PREFIX = SECRET_PREFIX + "svc-"
SERVICE_TOKEN_ID_PREFIX = "svc_"
ORG_ID_PREFIX = "org-"
# How much of the secret's random part a display prefix shows: enough to tell keys apart,
# far too little to guess the rest (62**42 remain).
_SHOWN = 6
# Masking an unrecognised key shows this much of its start and end, as OpenAI does, and only
# when the key is long enough that the shown part is a small fraction of it.
_MASK_HEAD = 2
_MASK_TAIL = 4
_MASK_MIN_SECRET = 24


def _random(alphabet: str, length: int) -> str:
    return "".join(secrets.choice(alphabet) for _ in range(length))


def new_secret() -> str:
    return SECRET_PREFIX + _random(BASE62, SECRET_LENGTH)


def new_key_id() -> str:
    return KEY_ID_PREFIX + _random(BASE62, 24)


def new_service_secret() -> str:
    return SERVICE_SECRET_PREFIX + _random(BASE62, SECRET_LENGTH)


def new_service_token_id() -> str:
    return SERVICE_TOKEN_ID_PREFIX + _random(BASE62, 24)


def new_org_id() -> str:
    return ORG_ID_PREFIX + _random(string.ascii_lowercase + string.digits, 16)


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    prefix = SERVICE_SECRET_PREFIX if secret.startswith(SERVICE_SECRET_PREFIX) else SECRET_PREFIX
    return secret[: len(prefix) + _SHOWN]


def is_well_formed(presented: str) -> bool:
    """Whether presented could be a secret Prism issued; others need no lookup."""
    body = presented.removeprefix(SECRET_PREFIX)
    # ASCII and alphanumeric is BASE62, checked in C rather than a character at a time.
    return (
        presented.startswith(SECRET_PREFIX)
        and len(body) == SECRET_LENGTH
        and body.isascii()
        and body.isalnum()
    )


def mask(presented: str) -> str:
    """What an error message may echo of a presented key: `sk-prism-Ab****wxyz`."""
    public = SECRET_PREFIX if presented.startswith(SECRET_PREFIX) else ""
    rest = presented.removeprefix(public)
    if len(rest) < _MASK_MIN_SECRET:
        return public + "****"
    return public + rest[:_MASK_HEAD] + "****" + rest[-_MASK_TAIL:]
