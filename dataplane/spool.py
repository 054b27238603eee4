"""The outbox's file: an append-only spool of the Records a data plane process has still to
deliver, which outlives the process.

A process claims one spool of the directory (`<n>.spool`, held by an exclusive flock on
`<n>.lock` for as long as the process lives), so the workers of one data plane, and a
worker restarted in a dead one's place, never share a file. A Record is appended before it
is sent, and a line saying it was delivered once the control plane has answered; what a
spool holds without that line is delivered again by the process that claims it next.
Spools that no live process holds (the data plane ran more workers before) are adopted at
start by whoever can lock them.

Each line is a JSON object, written with one write(2) to a file opened O_APPEND: a process
killed at any moment leaves whole lines and, at worst, a torn last one, which is skipped.
The page cache keeps what was written when the process dies, so no fsync is paid per
Record; a power loss can lose the last moments of a spool.
"""

import base64
import binascii
import fcntl
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from google.protobuf.message import DecodeError

from prism.v1 import authorizer_pb2

log = logging.getLogger("prism.dataplane")

# A spool whose Records are all delivered is emptied; one that still has some is rewritten
# with only those once it has grown past this, so a long outage cannot fill the disk with
# what was long delivered.
_COMPACT_BYTES = 4 << 20


@dataclass(frozen=True)
class Entry:
    """A Record to deliver: `record_id` names it in its spool, `key_id` orders it."""

    record_id: str
    key_id: str
    request: authorizer_pb2.RecordRequest


class Spool:
    def __init__(self, directory: Path) -> None:
        self._directory = directory
        self._lock_fd = -1
        self._fd = -1
        self._path = directory
        self._pending: dict[str, bytes] = {}
        self._size = 0

    def open(self) -> list[Entry]:
        """Claims a spool of the directory, and answers what it and every spool no process
        holds have yet to deliver, oldest first; those are in this spool from now on."""
        self._directory.mkdir(parents=True, exist_ok=True)
        number = 0
        while (lock_fd := _try_lock(self._directory / f"{number}.lock")) is None:
            number += 1
        self._lock_fd = lock_fd
        self._path = self._directory / f"{number}.spool"
        undelivered = _read(self._path)
        for orphan in sorted(self._directory.glob("*.spool")):
            if orphan == self._path:
                continue
            orphan_lock = _try_lock(orphan.with_suffix(".lock"))
            if orphan_lock is None:
                continue  # a live process's own
            undelivered += _read(orphan)
            self._rewrite(undelivered)
            orphan.unlink()
            os.close(orphan_lock)
        self._rewrite(undelivered)
        if undelivered:
            log.info("outbox: %d Record(s) from %s to deliver", len(undelivered), self._directory)
        entries = []
        for record_id, line in list(self._pending.items()):
            entry = _entry(record_id, line)
            if entry is None:
                log.error("outbox: Record %s in %s cannot be read; dropped", record_id, self._path)
                self.delivered(record_id)
            else:
                entries.append(entry)
        return entries

    def append(self, entry: Entry) -> None:
        line = _line(
            {
                "id": entry.record_id,
                "key": entry.key_id,
                "record": base64.b64encode(entry.request.SerializeToString()).decode(),
            }
        )
        self._write(line)
        self._pending[entry.record_id] = line

    def delivered(self, record_id: str) -> None:
        if self._pending.pop(record_id, None) is None:
            return
        if not self._pending:
            os.ftruncate(self._fd, 0)
            self._size = 0
        elif self._size > _COMPACT_BYTES:
            self._rewrite(list(self._pending.items()))
        else:
            self._write(_line({"delivered": record_id}))

    def close(self) -> None:
        """Releases the spool; what it holds undelivered is the next claimant's."""
        for fd in (self._fd, self._lock_fd):
            if fd >= 0:
                os.close(fd)
        self._fd = self._lock_fd = -1

    def _write(self, line: bytes) -> None:
        os.write(self._fd, line)
        self._size += len(line)

    def _rewrite(self, entries: list[tuple[str, bytes]]) -> None:
        """The spool holds exactly `entries`, replaced in one rename."""
        fresh = self._path.with_suffix(".new")
        fresh.write_bytes(b"".join(line for _, line in entries))
        os.replace(fresh, self._path)
        if self._fd >= 0:
            os.close(self._fd)
        self._fd = os.open(self._path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._pending = dict(entries)
        self._size = os.fstat(self._fd).st_size


def _try_lock(path: Path) -> int | None:
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def _line(fields: dict[str, str]) -> bytes:
    return json.dumps(fields, separators=(",", ":")).encode() + b"\n"


def _read(path: Path) -> list[tuple[str, bytes]]:
    """The undelivered Records of a spool, oldest first, as (record id, line)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return []
    pending: dict[str, bytes] = {}
    for line in raw.splitlines(keepends=True):
        try:
            fields = json.loads(line)
        except ValueError:
            # Only a process killed mid-write leaves one: its Record was never sent.
            log.warning("outbox: skipped a torn line of %s", path)
            continue
        if not isinstance(fields, dict):
            continue
        if "delivered" in fields:
            pending.pop(fields["delivered"], None)
        elif isinstance(fields.get("id"), str):
            pending[fields["id"]] = line if line.endswith(b"\n") else line + b"\n"
    return list(pending.items())


def _entry(record_id: str, line: bytes) -> Entry | None:
    try:
        fields = json.loads(line)
        request = authorizer_pb2.RecordRequest.FromString(base64.b64decode(fields["record"]))
        return Entry(record_id, fields["key"], request)
    except (binascii.Error, ValueError, KeyError, TypeError, DecodeError):
        return None
