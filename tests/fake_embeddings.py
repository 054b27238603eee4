"""A tiny OpenAI-compatible embeddings server for tests: `POST /v1/embeddings` over real
HTTP on a free port, in a thread.

Its embeddings are deterministic "meanings": one dimension per concept, counting the
words of that concept, so "automobile" and "car" are close while sharing no letters, and
one constant dimension so no vector is zero. It lists results in reverse order (clients
must use `index`), answers 401 without the expected key, and `fail_status` makes it fail.
"""

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CONCEPTS = [
    {"car", "cars", "automobile", "automobiles", "vehicle", "sedan"},
    {"refund", "refunds", "money", "reimbursement", "reimbursed", "cash"},
    {"dog", "dogs", "puppy", "canine", "hound"},
    {"rain", "weather", "storm", "umbrella"},
]


def meaning(text: str) -> list[float]:
    words = re.findall(r"\w+", text.lower())
    return [float(sum(word in concept for word in words)) for concept in CONCEPTS] + [0.1]


class FakeEmbeddings:
    def __init__(self, api_key: str = "sk-fake-embeddings") -> None:
        self.api_key = api_key
        self.requests: list[dict[str, Any]] = []
        self.fail_status: int | None = None
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                fake.requests.append({"path": self.path, "body": body})
                if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                    self._send(401, {"error": {"message": "bad key", "type": "auth"}})
                elif fake.fail_status is not None:
                    self._send(fake.fail_status, {"error": {"message": "overloaded"}})
                elif self.path != "/v1/embeddings":
                    self._send(404, {"error": {"message": "not found"}})
                else:
                    data = [
                        {"object": "embedding", "index": i, "embedding": meaning(text)}
                        for i, text in enumerate(body["input"])
                    ]
                    self._send(200, {"object": "list", "data": data[::-1], "model": body["model"]})

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                raw = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v1"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def __enter__(self) -> "FakeEmbeddings":
        self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
