"""The client's address, as sent to Check (where keys' and orgs' allowed IP ranges apply).

A request's peer is whoever opened the connection. Behind a load balancer or reverse proxy,
that is the proxy, and the client's address arrives in `X-Forwarded-For`; but anyone can send
that header, so it is believed only as far as PRISM_TRUSTED_PROXIES (CIDRs) vouch for it:

- a peer that is not a trusted proxy is the client, whatever the header says;
- otherwise the header's addresses (every X-Forwarded-For line, in order, as one
  comma-separated list) are read from the right, the nearest hop first. Each proxy appends
  the address it received the request from, so every entry up to the first untrusted address
  was written by a trusted proxy, and that first untrusted address is the client. Entries to
  its left were written by the client or by proxies nobody vouches for, and are ignored;
- every entry is a trusted address (a request from inside the proxies' own network): the
  leftmost, the farthest hop known, is the client;
- an entry that is not a bare IPv4 or IPv6 address (empty, a host name, with a port, ...)
  means a trusted proxy wrote something this rule cannot follow: the header is not believed
  at all and the peer is the client. The peer is the one address no header can forge;
- no header: the peer.

This is the "rightmost untrusted address" rule of nginx's `real_ip_recursive` and MDN's
X-Forwarded-For guidance, except that a broken chain falls back to the peer.

IPv4-mapped IPv6 addresses (`::ffff:10.1.2.3`, as a dual-stack socket reports IPv4 peers)
are read as the IPv4 address they carry, both for matching and as the address sent to Check.
"""

import ipaddress
from collections.abc import Iterable, Sequence
from typing import Any

from prism.addresses import Address, parse_address

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class ClientAddress:
    def __init__(self, trusted_proxies: Sequence[Network]) -> None:
        self._trusted = tuple(trusted_proxies)

    def of(self, request: Any) -> str:
        """The address of a request's client: its connection's peer and X-Forwarded-For."""
        peer = (request.scope.get("client") or ("",))[0]
        return self.resolve(peer, request.headers.getlist("x-forwarded-for"))

    def resolve(self, peer: str, forwarded_for: Iterable[str]) -> str:
        """The client's address, given the connection's peer and the X-Forwarded-For lines."""
        peer_address = parse_address(peer)
        if peer_address is None or not self._trusts(peer_address):
            return str(peer_address) if peer_address is not None else peer
        entries = [entry.strip() for line in forwarded_for for entry in line.split(",")]
        if not entries:
            return str(peer_address)
        client = peer_address
        for entry in reversed(entries):
            address = parse_address(entry)
            if address is None:
                return str(peer_address)
            client = address
            if not self._trusts(address):
                break
        return str(client)

    def _trusts(self, address: Address) -> bool:
        return any(address in network for network in self._trusted)
