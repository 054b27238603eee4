"""Paging of the Admin listings: page sizes and opaque page tokens, the same for all."""

import base64
import binascii

from controlplane.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 1000
# A page token names the listing it belongs to and the last id its page held. It is opaque
# to callers but not secret: it grants nothing a caller could not list anyway.
_TOKEN_VERSION = "v1"


def page_size(requested: int) -> int:
    """The page size asked for, or the default for 0."""
    if not 0 <= requested <= MAX_PAGE_SIZE:
        raise InvalidArgument(
            f"page_size {requested} is out of range: use 1 to {MAX_PAGE_SIZE}, "
            f"or 0 for {DEFAULT_PAGE_SIZE}"
        )
    return requested or DEFAULT_PAGE_SIZE


def position_after(page_token: str, listing: str) -> str:
    """The id a page token says its listing continues after; "" for the first page."""
    if not page_token:
        return ""
    try:
        padded = page_token + "=" * (-len(page_token) % 4)
        version, token_listing, after = (
            base64.urlsafe_b64decode(padded.encode()).decode().split("|", 2)
        )
    except (binascii.Error, UnicodeDecodeError, ValueError):
        version = token_listing = after = ""
    if version != _TOKEN_VERSION or not after:
        raise InvalidArgument(
            "page_token is not one this server issued; pass next_page_token unchanged"
        )
    if token_listing != listing:
        raise InvalidArgument(
            "page_token was issued for another listing; pass next_page_token back to the same "
            "RPC with the same org_id"
        )
    return after


def next_token(listing: str, after: str) -> str:
    """The page token continuing listing after the id `after`; "" when there is no next page."""
    if not after:
        return ""
    raw = f"{_TOKEN_VERSION}|{listing}|{after}"
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")
