"""Where request log entries go: a Redis Stream and stdout, both off the response path.

`RedisLogWriter.submit` (an observer of request_log.py) only appends the entry to a bounded
in-memory buffer; a background task drains it in batches, each written in ONE round trip (a
Lua script: XADD per entry, trimmed to about PRISM_LOG_MAX_RECORDS with `MAXLEN ~`, `MINID ~`
trimming of entries older than PRISM_LOG_RETENTION_HOURS, and the index by request id, trimmed
of the entries the stream no longer holds, so the log's memory is bounded by the stream's).
When Redis fails, the batch stays at the head of the buffer and is retried with exponential
backoff: nothing is lost while Redis comes back before the buffer (BUFFER_LIMIT entries) fills.
Only then are new entries dropped, counted, and logged once per episode. At shutdown the
buffer is flushed (for up to FLUSH_SECONDS).

`StdoutLines` writes each entry as one JSON line on stdout, from a thread, so a slow reader
of stdout never blocks the event loop. Both gather what arrives within GATHER_SECONDS of
an entry into one write.
"""

import asyncio
import collections
import logging
import sys
import threading
import time

from prism import redis_keys
from prism.redis_client import ERRORS, AsyncRedis, async_client

from .request_log import RequestLogEntry

log = logging.getLogger("prism.dataplane")

# Entries waiting for Redis; past it, new entries are dropped (and counted).
BUFFER_LIMIT = 50_000
# Entries written per round trip.
BATCH_SIZE = 200
# Entries arriving this close together are written together: under load, one round trip to
# Redis and one write to stdout per window instead of one per request (each costs the data
# plane a wake-up and a system call or more, and a script run in Redis); an entry waits this
# much longer at most.
GATHER_SECONDS = 0.02
# Backoff between retries while Redis fails.
_FIRST_BACKOFF = 0.05
_MAX_BACKOFF = 5.0
# How long shutdown waits for the buffer to reach Redis.
FLUSH_SECONDS = 5.0
_REDIS_TIMEOUT = 5.0

# KEYS: the stream, the index hash, the index's order list. ARGV: the stream's length cap,
# the retention in ms, then per entry: request id, org, key, status, route, entry JSON.
_WRITE = """
local fields = 6
local function older(a, b)
  local a_ms, a_seq = string.match(a, '^(%d+)%-(%d+)$')
  local b_ms, b_seq = string.match(b, '^(%d+)%-(%d+)$')
  a_ms, b_ms = tonumber(a_ms), tonumber(b_ms)
  return a_ms < b_ms or (a_ms == b_ms and tonumber(a_seq) < tonumber(b_seq))
end
for at = 2, #ARGV - 1, fields do
  local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[1], '*',
    'org', ARGV[at + 2], 'key', ARGV[at + 3], 'status', ARGV[at + 4],
    'route', ARGV[at + 5], 'entry', ARGV[at + 6])
  redis.call('HSET', KEYS[2], ARGV[at + 1], id)
  redis.call('RPUSH', KEYS[3], ARGV[at + 1])
end
local now = redis.call('TIME')
local now_ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('XTRIM', KEYS[1], 'MINID', '~', now_ms - tonumber(ARGV[2]))
local first = redis.call('XRANGE', KEYS[1], '-', '+', 'COUNT', 1)[1]
while true do
  local request_id = redis.call('LINDEX', KEYS[3], 0)
  if not request_id then break end
  local id = redis.call('HGET', KEYS[2], request_id)
  if id and first and not older(id, first[1]) then break end
  redis.call('LPOP', KEYS[3])
  redis.call('HDEL', KEYS[2], request_id)
end
return (#ARGV - 2) / fields
"""


class RedisLogWriter:
    def __init__(self, redis_url: str, max_records: int, retention_hours: float) -> None:
        self._redis_url = redis_url
        self._max_records = max_records
        self._retention_ms = int(retention_hours * 3_600_000)
        self._buffer: collections.deque[RequestLogEntry] = collections.deque()
        self._ready = asyncio.Event()
        self._dropped = 0
        self._redis: AsyncRedis | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    def submit(self, entry: RequestLogEntry) -> None:
        """Queues the entry for Redis; never waits."""
        if len(self._buffer) >= BUFFER_LIMIT:
            if self._dropped == 0:
                log.error(
                    "request log: Redis has not taken entries for a while and %d are waiting; "
                    "dropping new ones until it does",
                    BUFFER_LIMIT,
                )
            self._dropped += 1
            return
        self._buffer.append(entry)
        self._ready.set()

    async def open(self) -> None:
        self._redis = async_client(
            self._redis_url,
            socket_timeout=_REDIS_TIMEOUT,
            socket_connect_timeout=_REDIS_TIMEOUT,
        )
        self._script = self._redis.register_script(_WRITE)
        self._task = asyncio.create_task(self._drain(), name="request-log-writer")

    async def close(self) -> None:
        """Writes what is buffered (for up to FLUSH_SECONDS), then stops."""
        self._closing = True
        self._ready.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, FLUSH_SECONDS)
            except TimeoutError:
                log.error(
                    "request log: %d entries could not be written before shutdown",
                    len(self._buffer),
                )
        if self._redis is not None:
            await self._redis.aclose()

    async def _drain(self) -> None:
        backoff = _FIRST_BACKOFF
        while True:
            if not self._buffer:
                if self._closing:
                    return
                self._ready.clear()
                await self._ready.wait()
                continue
            if not self._closing and len(self._buffer) < BATCH_SIZE:
                await asyncio.sleep(GATHER_SECONDS)
            batch = [self._buffer[index] for index in range(min(BATCH_SIZE, len(self._buffer)))]
            try:
                await self._write(batch)
            except (*ERRORS, OSError) as error:
                if backoff == _FIRST_BACKOFF:
                    log.warning(
                        "request log: Redis refused %d entries (%s); retrying",
                        len(batch),
                        type(error).__name__,
                    )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, _MAX_BACKOFF)
                continue
            for _ in batch:
                self._buffer.popleft()
            if backoff != _FIRST_BACKOFF or self._dropped:
                log.warning(
                    "request log: Redis takes entries again; %d were dropped meanwhile",
                    self._dropped,
                )
            backoff = _FIRST_BACKOFF
            self._dropped = 0

    async def _write(self, batch: list[RequestLogEntry]) -> None:
        keys = [redis_keys.REQUEST_LOG, redis_keys.REQUEST_LOG_INDEX, redis_keys.REQUEST_LOG_ORDER]
        args: list[str | int] = [self._max_records, self._retention_ms]
        for entry in batch:
            document = entry.document
            args += [
                document["request_id"],
                document["org_id"],
                document["key_id"],
                document["status"],
                document["route"],
                entry.json_line,
            ]
        await self._script(keys=keys, args=args)


class StdoutLines:
    """One JSON line per request on stdout. A request only appends its line; a thread writes
    what has gathered in one write, so a slow reader of stdout never blocks the event loop,
    and no lock or thread switch is paid per line."""

    def __init__(self) -> None:
        self._lines: collections.deque[bytes] = collections.deque()
        self._gathered = threading.Event()
        self._closing = False
        self._dropped = 0
        self._writer = threading.Thread(target=self._write, name="stdout-lines", daemon=True)

    def submit(self, entry: RequestLogEntry) -> None:
        if len(self._lines) >= BUFFER_LIMIT:
            self._dropped += 1  # stdout is not being read
            return
        self._lines.append(entry.json_line.encode() + b"\n")
        if not self._gathered.is_set():
            self._gathered.set()

    def open(self) -> None:
        self._writer.start()

    def close(self) -> None:
        self._closing = True
        self._gathered.set()
        self._writer.join()
        if self._dropped:
            log.error("request log: %d stdout lines dropped", self._dropped)

    def _write(self) -> None:
        out = sys.stdout.buffer
        while not (self._closing and not self._lines):
            self._gathered.wait()
            if not self._closing:
                time.sleep(GATHER_SECONDS)
            self._gathered.clear()
            batch = []
            while self._lines:
                batch.append(self._lines.popleft())
            if batch:
                try:
                    out.write(b"".join(batch))
                    out.flush()
                except OSError:  # stdout closed: the lines are lost, and counted
                    self._dropped += len(batch)
