"""The bench's instruments measure what they say: the CPU of a whole process tree, reaped
children included, and a load that fails loudly when a response is not a 200. (What they
measure is never asserted: that is `make bench`'s output, not a test.)"""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest

from tools import stack
from tools.bench import setup
from tools.bench.cpu import cpu_seconds
from tools.bench.load import LoadError, load

BURN = 0.4  # CPU seconds each busy process spends

# A parent that starts two children each burning BURN seconds of CPU, reaps one, keeps the
# other alive, and says so.
_TREE = f"""
import subprocess, sys, time
burn = "import time\\nwhile time.process_time() < {BURN}: pass\\nprint('burnt', flush=True)\\n"
reaped = subprocess.Popen([sys.executable, "-c", burn], stdout=subprocess.DEVNULL)
reaped.wait()
alive = subprocess.Popen([sys.executable, "-c", burn + "time.sleep(60)"], stdout=subprocess.PIPE)
alive.stdout.readline()
print("ready", flush=True)
time.sleep(60)
"""


def test_a_process_trees_cpu_includes_its_live_and_reaped_children() -> None:
    # A session of its own, so that the live child is stopped with its parent.
    parent = subprocess.Popen(
        [sys.executable, "-c", _TREE], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "ready"
        spent = cpu_seconds({"tree": [parent.pid], "nothing": []})
        # Both children's BURN, less a clock tick each; the parent's own start on top.
        assert spent["tree"] >= 2 * BURN - 0.05
        assert spent["nothing"] == 0
    finally:
        os.killpg(parent.pid, signal.SIGKILL)
        parent.wait()


def test_cpu_of_an_exited_process_is_zero_not_an_error() -> None:
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert cpu_seconds({"gone": [gone.pid]}) == {"gone": 0}


@pytest.fixture(scope="module")
def minimal_upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = stack.free_port()
    logs = tmp_path_factory.mktemp("bench-upstream")
    process = setup.start_server("tools.bench.upstream", port, logs, "upstream", "/v1/threads/t")
    yield f"http://127.0.0.1:{port}/v1"
    process.stop()


def test_load_counts_the_requests_answered(minimal_upstream: str) -> None:
    began = time.monotonic()
    answered = load([f"{minimal_upstream}/threads/thread_1"] * 2, {}, 4, 0.5)
    assert answered.requests > 0
    assert 0.5 <= answered.seconds <= time.monotonic() - began


def test_load_fails_naming_the_status_of_a_response_not_200(minimal_upstream: str) -> None:
    with pytest.raises(LoadError, match=r"\{404: "):
        load([f"{minimal_upstream}/not-a-route"], {}, 2, 0.5)


def test_load_fails_on_a_server_that_is_not_there() -> None:
    with pytest.raises(LoadError, match="failed"):
        load([f"http://127.0.0.1:{stack.free_port()}/v1/threads/t"], {}, 2, 0.5)
