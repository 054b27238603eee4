"""Load generation, wrk-like: keep-alive connections each sending GETs back to back.

Raw HTTP/1.1 over asyncio streams on uvloop, in the bench's own process, which no CPU
tree measured includes. Unlike wrk, it drains: when the time is up every connection
awaits the answer to the request it has in flight and stops, so every request a server
spent CPU on is counted, and none is left running into the next measurement.
"""

import asyncio
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

import uvloop


class LoadError(RuntimeError):
    """A request failed: a connection error, a malformed answer, or a status not 200."""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


async def _read_body(reader: asyncio.StreamReader, headers: Mapping[bytes, bytes]) -> None:
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)  # the chunk and its CRLF
            if size == 0:
                return
    await reader.readexactly(int(headers.get(b"content-length", b"0")))


async def _connection(
    host: str, port: int, request: bytes, stop_at: float, statuses: Counter[int]
) -> None:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        while time.perf_counter() < stop_at:
            writer.write(request)
            head = (await reader.readuntil(b"\r\n\r\n")).split(b"\r\n")
            headers = {}
            for line in head[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower()] = value.strip()
            await _read_body(reader, headers)
            statuses[int(head[0].split(b" ")[1])] += 1
            if headers.get(b"connection", b"").lower() == b"close":
                raise LoadError(f"{host}:{port} closed the connection after {head[0]!r}")
    finally:
        writer.close()


async def _load(
    urls: Sequence[str], headers: Mapping[str, str], connections: int, seconds: float
) -> tuple[Counter[int], float]:
    statuses: Counter[int] = Counter()
    began = time.perf_counter()
    tasks = []
    for number in range(connections):
        url = urlsplit(urls[number % len(urls)])
        lines = [f"GET {url.path} HTTP/1.1", f"host: {url.netloc}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        request = ("\r\n".join(lines) + "\r\n\r\n").encode()
        assert url.hostname is not None and url.port is not None, url
        tasks.append(_connection(url.hostname, url.port, request, began + seconds, statuses))
    try:
        await asyncio.gather(*tasks)
    except (OSError, asyncio.IncompleteReadError, ValueError, IndexError) as error:
        raise LoadError(f"a request to {', '.join(urls)} failed: {error!r}") from None
    return statuses, time.perf_counter() - began


def load(urls: Sequence[str], headers: Mapping[str, str], connections: int, seconds: float) -> Load:
    """GETs `urls` (the connections taking them in turn) over `connections` keep-alive
    connections back to back for `seconds`, then drains. Raises LoadError unless every
    answer was a 200."""
    statuses, elapsed = uvloop.run(_load(urls, headers, connections, seconds))
    failed = {status: count for status, count in statuses.items() if status != 200}
    if failed:
        raise LoadError(
            f"of {statuses.total()} requests to {', '.join(urls)}, these answered other "
            f"than 200 (status: count): {failed}"
        )
    return Load(statuses.total(), elapsed)
