"""`python -m tools.bench [--peers litellm]`: runs the bench's parts, one after another."""

import tempfile
from pathlib import Path

from . import latency


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="prism-bench-") as tmp:
        latency.run(Path(tmp))


if __name__ == "__main__":
    main()
