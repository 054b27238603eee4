"""`python -m tools.bench.floor --listen HOST:PORT`: the framework's floor.

A bare Quart app answering `GET /v1/threads/{id}` with the minimal upstream's body, served
the way the data plane is (prism/serving.py: Hypercorn on uvloop, one process): what any
request costs on this stack before the gateway does anything, the denominator of the
overhead bench's ratios.
"""

import argparse

from quart import Quart, Response

from prism.listen import listening_socket
from prism.serving import serve
from tools.bench.upstream import thread_body

app = Quart("floor", static_folder=None)


@app.get("/v1/threads/<thread_id>")
async def thread(thread_id: str) -> Response:
    return Response(thread_body(thread_id), content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="HOST:PORT")
    host, _, port = parser.parse_args().listen.rpartition(":")
    raise SystemExit(serve(listening_socket(host, int(port)), "tools.bench.floor:app", 1))


if __name__ == "__main__":
    main()
