"""Client addresses as both planes read them."""

import functools
import ipaddress

Address = ipaddress.IPv4Address | ipaddress.IPv6Address


# Every request's peer (and X-Forwarded-For entries) is parsed, mostly the same few
# addresses again; parsing costs microseconds, a cache hit a tenth of one. Addresses are
# immutable, so a cached one can be shared.
@functools.lru_cache(maxsize=4096)
def parse_address(text: str) -> Address | None:
    """The address `text` spells, or None. An IPv4-mapped IPv6 address (`::ffff:10.0.0.1`, as
    dual-stack sockets report IPv4 peers) is the IPv4 address it carries, so IPv4 ranges and
    trusted proxies match it."""
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address
