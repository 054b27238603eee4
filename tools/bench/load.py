"""Load generation: wrk, a C load generator in a process of its own, so that its CPU is in
none of the trees measured and little of the machine's goes to making the load."""

import json
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

# Each wrk thread counts its responses by status; done(), called once at the end, prints
# what the bench needs as one JSON line.
_REPORT = """
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) statuses = {} end
function response(status, headers, body) statuses[status] = (statuses[status] or 0) + 1 end
function done(summary, latency, requests)
  local e = summary.errors
  local counts = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      counts[#counts + 1] = string.format('"%d": %d', status, count)
    end
  end
  io.write(string.format(
    'wrk-result {"requests": %d, "microseconds": %d, "socket": %d, "statuses": {%s}}\\n',
    summary.requests, summary.duration, e.connect + e.read + e.write + e.timeout,
    table.concat(counts, ", ")))
end
"""
_MARK = "wrk-result "
# A response slower than this counts as an error; a slow peer is slow, not broken.
_TIMEOUT = "30s"


class LoadError(RuntimeError):
    """A request failed (an error status, a socket error or a timeout) or wrk did not run."""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


def wrk(
    urls: Sequence[str],
    headers: Mapping[str, str],
    connections: int,
    seconds: int,
    scratch: Path,
) -> Load:
    """GET each of `urls` back to back over `connections` keep-alive connections in all
    (split evenly between the URLs, one wrk each, all at once) for `seconds`. Raises
    LoadError unless every response was a 200."""
    if shutil.which("wrk") is None:
        raise LoadError("wrk is not installed (`make bench` installs it with apt-get)")
    script = scratch / "wrk-report.lua"
    script.write_text(_REPORT)
    header_args = [arg for name, value in headers.items() for arg in ("-H", f"{name}: {value}")]
    runs = [
        subprocess.Popen(
            [
                "wrk",
                "-t1",
                f"-c{connections // len(urls)}",
                f"-d{seconds}s",
                f"--timeout={_TIMEOUT}",
                "-s",
                str(script),
                *header_args,
                url,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for url in urls
    ]
    requests, duration = 0, 0.0
    for run in runs:
        output = run.communicate()[0]
        results = [line for line in output.splitlines() if line.startswith(_MARK)]
        if run.returncode != 0 or not results:
            raise LoadError(f"wrk exited with {run.returncode}:\n{output}")
        result = json.loads(results[0].removeprefix(_MARK))
        failed = {status: n for status, n in result["statuses"].items() if status != "200"}
        if failed or result["socket"]:
            raise LoadError(
                f"of {result['requests']} requests to {run.args[-1]}, {result['socket']} "
                f"failed on the socket and these answered other than 200: {failed}"
            )
        requests += result["requests"]
        duration = max(duration, result["microseconds"] / 1_000_000)
    return Load(requests, duration)
