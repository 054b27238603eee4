"""CPU accounting from the processes' own counters: utime+stime in /proc/<pid>/stat.

A server is a process tree (a data plane with 2 workers is Hypercorn's parent and its
worker processes), so its CPU is the sum over the tree; the counters of children it has
already reaped are in its cutime+cstime, so a worker that exits mid-run is not lost. The
bench's own process (and the load generator, another process) is in no tree measured.
"""

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PROC = Path("/proc")


@dataclass(frozen=True)
class _Stat:
    parent: int
    ticks: int  # utime + stime + cutime + cstime


def _stat(pid: int) -> _Stat | None:
    """None for a process that has exited since it was listed."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name, field 2, is in parentheses and may hold spaces: fields count from
    # after its closing one (proc(5): state is field 3, ppid 4, utime 14 ... cstime 17).
    fields = text[text.rindex(")") + 2 :].split()
    return _Stat(parent=int(fields[1]), ticks=sum(int(field) for field in fields[11:15]))


def _all_processes() -> dict[int, _Stat]:
    found = {}
    for entry in _PROC.iterdir():
        if entry.name.isdigit() and (stat := _stat(int(entry.name))) is not None:
            found[int(entry.name)] = stat
    return found


def _tree_seconds(root: int, processes: Mapping[int, _Stat]) -> float:
    """CPU seconds spent so far by `root` and every descendant of it."""
    children: dict[int, list[int]] = {}
    for pid, stat in processes.items():
        children.setdefault(stat.parent, []).append(pid)
    ticks, pending = 0, [root]
    while pending:
        pid = pending.pop()
        if pid in processes:
            ticks += processes[pid].ticks
        pending.extend(children.get(pid, ()))
    return ticks / CLOCK_TICKS


def cpu_seconds(roots: Mapping[str, Sequence[int]]) -> dict[str, float]:
    """Per name, the CPU seconds its process trees (one per root pid: two data planes are
    one name) have spent so far, all read at one moment."""
    processes = _all_processes()
    return {
        name: sum(_tree_seconds(pid, processes) for pid in pids) for name, pids in roots.items()
    }
