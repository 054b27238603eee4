"""Key secrets and ids: how they are made, hashed, shown and masked."""

import hashlib
import secrets
import string

SECRET_PREFIX = "sk-prism-"
_BASE62 = string.ascii_letters + string.digits
_SECRET_LENGTH = 48
# How much of the secret's random part a display prefix shows: enough to tell keys apart.
_SHOWN = 6


def _random_base62(length: int) -> str:
    return "".join(secrets.choice(_BASE62) for _ in range(length))


def new_secret() -> str:
    return SECRET_PREFIX + _random_base62(_SECRET_LENGTH)


def new_key_id() -> str:
    return "key_" + _random_base62(24)


def new_org_id() -> str:
    return "org-" + "".join(
        secrets.choice(string.ascii_lowercase + string.digits) for _ in range(16)
    )


def sha256(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def display_prefix(secret: str) -> str:
    return secret[: len(SECRET_PREFIX) + _SHOWN]


def looks_like_secret(presented: str) -> bool:
    body = presented.removeprefix(SECRET_PREFIX)
    return (
        presented.startswith(SECRET_PREFIX)
        and len(body) >= 40
        and all(char in _BASE62 for char in body)
    )


def mask(presented: str) -> str:
    """What an error message may echo of a presented key, as OpenAI does: `sk-prism-Ab****wxyz`."""
    if len(presented) < 16:
        return "****"
    return presented[: len(SECRET_PREFIX) + 2] + "****" + presented[-4:]
