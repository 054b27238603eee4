"""The HTTP servers' listening socket, bound by the process itself and handed to Hypercorn.

Binding here rather than in Hypercorn keeps a taken port one clear line, and keeps
SO_REUSEPORT off: Hypercorn sets it for several workers, which would let a second server
bind the same port silently instead of failing.
"""

import socket


def listening_socket(host: str, port: int) -> socket.socket:
    """A TCP socket bound to host:port; OSError when the port is taken or the address is
    not this machine's."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        # Accepted connections inherit it: responses and events go out without Nagle's delay.
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.bind((host, port))
    except BaseException:
        sock.close()
        raise
    return sock
