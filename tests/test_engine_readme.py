"""The README's first Python example, as a user copies it, runs end to end through the gateway
onto the Assistants engine's offline model: what `make run` serves when no upstream is given."""

import re
import subprocess
import sys

from tests.conftest import DataPlane, IssueKey
from tools import stack

README_BASE_URL = "http://127.0.0.1:8080/v1"
README_KEY = "sk-prism-…"


def first_python_example() -> str:
    readme = (stack.ROOT / "README.md").read_text()
    found = re.search(r"^```python\n(.*?)^```", readme, re.MULTILINE | re.DOTALL)
    assert found, "README.md has no ```python block"
    code = found.group(1)
    # The two values a user replaces, so a README edit that moves them fails here.
    assert README_BASE_URL in code and README_KEY in code, code
    return code


def test_the_readme_example_answers_through_the_gateway_on_the_engine(
    engine_gateway: DataPlane, issue_key: IssueKey
) -> None:
    _, issued = issue_key()
    code = (
        first_python_example()
        .replace(README_BASE_URL, engine_gateway.url)
        .replace(README_KEY, issued.secret)
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    # The offline model answers the thread's last message.
    assert result.stdout == 'You asked: "Solve 3x + 11 = 14".\n'
