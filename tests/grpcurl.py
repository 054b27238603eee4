"""grpcurl as an operator runs it (the dev dependencies' binary), and how its failures read."""

import shutil
import subprocess
import sys
from pathlib import Path

GRPCURL = shutil.which("grpcurl", path=str(Path(sys.executable).parent)) or "grpcurl"


def grpcurl_with(
    transport: list[str],
    addr: str,
    *verb: str,
    data: str | None = None,
    token: str | None = None,
) -> subprocess.CompletedProcess[str]:
    """`grpcurl <transport flags> [-rpc-header auth] [-d data] addr verb…`."""
    flags = ["-rpc-header", f"authorization: Bearer {token}"] if token else []
    flags += ["-d", data] if data is not None else []
    return subprocess.run(
        [GRPCURL, *transport, *flags, addr, *verb],
        capture_output=True,
        text=True,
        timeout=30,
    )


def grpcurl(
    addr: str, *verb: str, data: str | None = None, token: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`grpcurl -plaintext [-rpc-header auth] [-d data] addr verb…`."""
    return grpcurl_with(["-plaintext"], addr, *verb, data=data, token=token)


def refused(result: subprocess.CompletedProcess[str], code: str, *says: str) -> None:
    """grpcurl failed with this status code name and a message holding every fragment."""
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"Code: {code}" in output, output
    for fragment in says:
        assert fragment in output, output
