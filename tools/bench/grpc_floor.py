"""`python -m tools.bench.grpc_floor --listen ADDRESS --answer FILE`: gRPC's own floor.

A bare grpc.aio server on uvloop, as the control plane is served (one process, the same
server options), whose only method is `prism.v1.Authorizer/Check`: it parses each request
and answers the CheckResponse in FILE (serialized, as the control plane answered the same
request), serialized again per call. No interceptor, no Redis, no decision: what one unary
Check costs on this stack before the control plane does anything, the denominator of the
Check bench's ratios. ADDRESS is a gRPC listen address (`127.0.0.1:PORT`, `unix:PATH`).
"""

import argparse
from pathlib import Path
from typing import Any

import grpc
import uvloop

from controlplane.server import SERVER_OPTIONS
from prism.v1 import authorizer_pb2, authorizer_pb2_grpc


class FixedAnswer(authorizer_pb2_grpc.AuthorizerServicer):
    def __init__(self, answer: authorizer_pb2.CheckResponse) -> None:
        self._answer = answer

    async def Check(
        self, request: authorizer_pb2.CheckRequest, context: Any
    ) -> authorizer_pb2.CheckResponse:
        return self._answer


async def serve(listen: str, answer: authorizer_pb2.CheckResponse) -> None:
    server = grpc.aio.server(options=SERVER_OPTIONS)
    authorizer_pb2_grpc.add_AuthorizerServicer_to_server(FixedAnswer(answer), server)
    server.add_insecure_port(listen)
    await server.start()
    await server.wait_for_termination()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--listen", required=True, help="a gRPC listen address")
    parser.add_argument("--answer", required=True, type=Path, help="a serialized CheckResponse")
    arguments = parser.parse_args()
    answer = authorizer_pb2.CheckResponse.FromString(arguments.answer.read_bytes())
    uvloop.run(serve(arguments.listen, answer))


if __name__ == "__main__":
    main()
