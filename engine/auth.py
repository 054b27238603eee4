"""The engine's one credential: `Authorization: Bearer <PRISM_ENGINE_API_KEY>`."""

import hmac

from .errors import ApiError, incorrect_api_key, missing_api_key


def check_bearer(authorization: str | None, api_key: str) -> ApiError | None:
    """None when the header carries the key, else the 401 OpenAI answers."""
    scheme, _, presented = (authorization or "").strip().partition(" ")
    presented = presented.strip()
    if scheme.lower() != "bearer" or not presented:
        return missing_api_key()
    # Constant time: the comparison must not tell how much of a guess was right.
    if not hmac.compare_digest(presented.encode(), api_key.encode()):
        return incorrect_api_key()
    return None
