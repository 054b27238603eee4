"""Peers measured beside Prism on the same minimal upstream and route: LiteLLM's proxy.

LiteLLM is installed by the bench, pinned, into a virtualenv of its own under .prism/bench/
(kept between runs, never Prism's .venv), and started with its Assistants pass-through
settings (`assistant_settings`), a master key and no database.
"""

import secrets
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tools import stack

# A release from before 2026-03, not yanked; 1.82.7 and 1.82.8 were published by a
# supply-chain attack and must never be installed.
LITELLM_VERSION = "1.81.16"
LITELLM_VENV = stack.ROOT / ".prism" / "bench" / f"litellm-{LITELLM_VERSION}"
_INSTALL_TIMEOUT = 900.0


class PeerUnavailable(RuntimeError):
    """The peer could not be installed or started here; the message says why."""


@dataclass(frozen=True)
class Peer:
    name: str
    process: stack.Process
    base: str  # where the route is, e.g. http://127.0.0.1:PORT/v1
    key: str


def _litellm_command() -> Path:
    """The pinned LiteLLM's CLI, installed first if missing."""
    command = LITELLM_VENV / "bin" / "litellm"
    if command.exists():
        return command
    print(f"installing LiteLLM {LITELLM_VERSION} into {LITELLM_VENV} (once)", flush=True)
    try:
        subprocess.run(
            [sys.executable, "-m", "venv", str(LITELLM_VENV)], check=True, capture_output=True
        )
        subprocess.run(
            [
                str(LITELLM_VENV / "bin" / "pip"),
                "install",
                "--quiet",
                f"litellm[proxy]=={LITELLM_VERSION}",
            ],
            check=True,
            capture_output=True,
            text=True,
            timeout=_INSTALL_TIMEOUT,
        )
    except subprocess.CalledProcessError as error:
        raise PeerUnavailable(f"cannot install LiteLLM: {error.stderr or error}") from None
    except subprocess.TimeoutExpired:
        raise PeerUnavailable(f"installing LiteLLM took over {_INSTALL_TIMEOUT:.0f} s") from None
    return command


def start_litellm(upstream_base: str, work: Path, logs: Path) -> Peer:
    """LiteLLM's proxy, one worker, in front of `upstream_base` (http://host:port/v1)."""
    command = _litellm_command()
    master_key = "sk-bench-" + secrets.token_hex(16)
    config = work / "litellm.yaml"
    config.write_text(
        "model_list: []\n"
        "assistant_settings:\n"
        "  custom_llm_provider: openai\n"
        "  litellm_params:\n"
        "    api_key: sk-bench-upstream\n"
        f"    api_base: {upstream_base}\n"
        "general_settings:\n"
        f"  master_key: {master_key}\n"
    )
    port = stack.free_port()
    argv = [str(command), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    argv += ["--num_workers", "1", "--telemetry", "False"]
    # Its model price list from the package, not fetched from the network at start.
    env = stack.clean_environment({"LITELLM_LOCAL_MODEL_COST_MAP": "True"})
    process = stack.spawn("litellm", argv, env, logs)
    try:
        stack.wait_until_ready(process, port, "/health/liveliness")
    except stack.StartError as error:
        raise PeerUnavailable(str(error)) from None
    return Peer(f"LiteLLM {LITELLM_VERSION}", process, f"http://127.0.0.1:{port}/v1", master_key)
