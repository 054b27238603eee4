"""`python -m tools.bench [--peers litellm]`: runs the bench's parts, one after another."""

import argparse
import tempfile
from pathlib import Path

from . import checks, latency, overhead


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.bench", description=__doc__)
    parser.add_argument(
        "--peers",
        default="",
        help=f"comma-separated peers to measure beside Prism: {', '.join(overhead.PEERS)}",
    )
    peers = [peer for peer in parser.parse_args().peers.split(",") if peer]
    unknown = set(peers) - set(overhead.PEERS)
    if unknown:
        parser.error(f"unknown peers: {', '.join(sorted(unknown))}")
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as tmp:
        latency.run(Path(tmp) / "latency")
        overhead.run(Path(tmp) / "overhead", peers)
        checks.run(Path(tmp) / "checks")


if __name__ == "__main__":
    main()
